// esbuild bundles imported CSS into the entry point's stylesheet.
declare module '*.css';
