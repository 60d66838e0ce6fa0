// Drives npm's piston-api-client against a grappe master, as a Piston
// user's program would, and prints what it got as one JSON object for
// piston_npm_test.go to check. PISTON_URL is the master's base URL;
// NODE_EXTRA_CA_CERTS makes node trust the cluster's CA.
//
// The package ships two clients over the same calls: NodePistonClient
// (node's http/https modules) and PistonClient (the Fetch API, node >= 18).
// Both are driven, each with the same requests, under "node" and "fetch".
//
// The client never throws: each call answers {success: true, data} or
// {success: false, error}. It does not look at the HTTP status either, so
// a request Piston refuses (a 400 with {"message": ...}) comes back as
// success: true with the message as data, against Piston as against grappe.
import { NodePistonClient, PistonClient } from "piston-api-client";

const cases = {
  hello: { language: "python", version: "*", files: [{ content: 'print("hello")' }] },
  cpp: {
    language: "c++",
    version: "*",
    files: [{ content: '#include <iostream>\nint main(){ std::cout << "hi" << std::endl; }' }],
  },
  stdinArgs: {
    language: "python",
    version: "*",
    files: [{ name: "echo.py", content: "import sys\nprint(' '.join(sys.argv[1:]))\nprint(input())" }],
    stdin: "from stdin",
    args: ["a", "b c"],
  },
  compileError: { language: "c", version: "*", files: [{ content: "int main(void){ return 0 }" }] },
  timeout: { language: "python", version: "*", files: [{ content: "while True: pass" }], run_timeout: 1500 },
  unknown: { language: "cobol", version: "1.0.0", files: [{ content: "x" }] },
};

// An error object (a TypeError from fetch, a SyntaxError from JSON.parse)
// prints as {} in JSON: its text is kept instead.
const plain = (res) => (res && res.success === false ? { success: false, error: String(res.error) } : res);

const drive = async (client) => {
  const out = { runtimes: plain(await client.runtimes()) };
  for (const [name, data] of Object.entries(cases)) {
    out[name] = plain(await client.execute(data));
  }
  return out;
};

const out = {
  node: await drive(new NodePistonClient({ server: process.env.PISTON_URL })),
  fetch: await drive(new PistonClient({ server: process.env.PISTON_URL })),
};
// runtimes() caches its answer and clears the cache with a timer of
// cacheTime (a day by default) that keeps node's event loop alive: the
// script would not end on its own, whatever the server.
process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
