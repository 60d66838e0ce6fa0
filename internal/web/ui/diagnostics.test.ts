// Unit tests of the diagnostics parser on real output of the compilers and
// runtimes, captured on a Debian machine (ui/testdata/*.txt: gcc 12, g++,
// javac 17, rustc, go, node 20, python 3.11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseDiagnostics, tabOf, type Diagnostic } from './diagnostics';

const captured = (name: string) => readFileSync(new URL(`../ui/testdata/${name}.txt`, import.meta.url), 'utf8');

const cases: { name: string; text: string; want: Diagnostic[] }[] = [
  {
    name: 'gcc: a syntax error', text: captured('gcc'),
    want: [{ file: 'main.c', line: 4, column: 5, severity: 'error', message: 'expected ‘,’ or ‘;’ before ‘return’' }],
  },
  {
    name: 'gcc -Wall: an error and a warning', text: captured('gccw'),
    want: [
      { file: 'w.c', line: 4, column: 22, severity: 'error', message: 'expected ‘;’ before ‘}’ token' },
      { file: 'w.c', line: 3, column: 9, severity: 'warning', message: 'unused variable ‘unused’ [-Wunused-variable]' },
    ],
  },
  {
    name: 'g++: an undeclared name', text: captured('gpp'),
    want: [{ file: 'main.cpp', line: 3, column: 18, severity: 'error', message: '‘y’ was not declared in this scope' }],
  },
  {
    name: 'javac: two errors, the column from the caret', text: captured('javac'),
    want: [
      { file: 'Main.java', line: 3, column: 17, severity: 'error', message: 'incompatible types: String cannot be converted to int' },
      { file: 'Main.java', line: 4, column: 9, severity: 'error', message: 'cannot find symbol' },
    ],
  },
  {
    name: 'rustc: the place on the line after the message', text: captured('rustc'),
    want: [
      { file: 'main.rs', line: 3, column: 20, severity: 'error', message: 'cannot find value `y` in this scope' },
      { file: 'main.rs', line: 2, column: 18, severity: 'error', message: 'mismatched types' },
    ],
  },
  {
    name: 'go build', text: captured('go'),
    want: [{ file: 'main.go', line: 6, column: 14, severity: 'error', message: 'undefined: x' }],
  },
  {
    name: 'node: the first frame in the user\'s code', text: captured('node'),
    want: [{ file: 'main.js', line: 3, column: 3, severity: 'error', message: 'ReferenceError: missing is not defined' }],
  },
  {
    name: 'python: the last frame of the traceback', text: captured('py'),
    want: [{ file: 'main.py', line: 2, severity: 'error', message: 'ZeroDivisionError: division by zero' }],
  },
  {
    name: 'python: a syntax error with its caret', text: captured('pysyn'),
    want: [{ file: 'syn.py', line: 1, column: 7, severity: 'error', message: 'SyntaxError: invalid syntax' }],
  },
  {
    name: 'python: frames in the standard library are skipped',
    text: 'Traceback (most recent call last):\n  File "/box/main.py", line 3, in <module>\n    json.loads("x")\n  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n    return _default_decoder.decode(s)\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n',
    want: [{ file: 'main.py', line: 3, severity: 'error', message: 'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)' }],
  },
  {
    name: 'colours are ignored',
    text: '\x1b[01m\x1b[Kmain.c:2:3:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kboom\n',
    want: [{ file: 'main.c', line: 2, column: 3, severity: 'error', message: 'boom' }],
  },
  { name: 'plain output is no diagnostic', text: 'hello\n2 errors\nresult: 3:4\n', want: [] },
  { name: 'empty', text: '', want: [] },
];

for (const c of cases) {
  test(c.name, () => assert.deepEqual(parseDiagnostics(c.text), c.want));
}

test('tabOf: a tab of that name, else the main file', () => {
  const d = (file: string): Diagnostic => ({ file, line: 1, severity: 'error', message: '' });
  assert.equal(tabOf(d('util.h'), ['util.h'], 'main'), 'util.h');
  assert.equal(tabOf(d('main.c'), ['util.h'], 'main'), 'main');
  assert.equal(tabOf(d('Main.java'), [], 'main'), 'main');
});
