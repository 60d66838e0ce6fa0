// Drives npm's piston-client against a grappe master, as a Piston user's
// program would, and prints what it got as one JSON object for
// piston_npm_test.go to check. PISTON_URL is the master's base URL;
// NODE_EXTRA_CA_CERTS makes node trust the cluster's CA.
import piston from "piston-client";

const client = piston({ server: process.env.PISTON_URL });
const out = {};
const run = async (name, ...args) => {
  const res = await client.execute(...args);
  if (res && res.success === false) {
    res.error = String(res.error);
  }
  out[name] = res;
};

out.runtimes = await client.runtimes();
await run("hello", "python", 'print("hello")');
await run("cpp", "c++", '#include <iostream>\nint main(){ std::cout << "hi" << std::endl; }');
await run("stdinArgs", {
  language: "python",
  files: [{ name: "echo.py", content: "import sys\nprint(' '.join(sys.argv[1:]))\nprint(input())" }],
  stdin: "from stdin",
  args: ["a", "b c"],
});
await run("compileError", "c", "int main(void){ return 0 }");
await run("timeout", "python", "while True: pass", { runTimeout: 1500 });
await run("unknown", "cobol", "x", { version: "1.0.0" });
console.log(JSON.stringify(out));
