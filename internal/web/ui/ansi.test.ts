import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newAnsiState, parseAnsi } from './ansi';

test('plain text is one run without classes', () => {
  assert.deepEqual(parseAnsi('hello\n'), [{ text: 'hello\n', classes: [] }]);
});

test('colours, bold and reset', () => {
  assert.deepEqual(parseAnsi('a\x1b[31mred\x1b[1;32mbold green\x1b[0m b'), [
    { text: 'a', classes: [] },
    { text: 'red', classes: ['ansi-fg-1'] },
    { text: 'bold green', classes: ['ansi-bold', 'ansi-fg-2'] },
    { text: ' b', classes: [] },
  ]);
});

test('bright, background, 256 and truecolour map to the 16', () => {
  assert.deepEqual(parseAnsi('\x1b[94;41mx\x1b[38;5;196my\x1b[38;2;0;0;255mz'), [
    { text: 'x', classes: ['ansi-fg-12', 'ansi-bg-1'] },
    { text: 'y', classes: ['ansi-fg-9', 'ansi-bg-1'] },
    { text: 'z', classes: ['ansi-fg-12', 'ansi-bg-1'] },
  ]);
});

test('markup in the output stays text', () => {
  const runs = parseAnsi('\x1b[31m<img src=x onerror=alert(1)>\x1b[m');
  assert.deepEqual(runs, [{ text: '<img src=x onerror=alert(1)>', classes: ['ansi-fg-1'] }]);
});

test('other sequences are dropped; unknown codes ignored; a malformed one stays text', () => {
  assert.deepEqual(parseAnsi('\x1b[2J\x1b[Ha\x1b[31;999mb\x1bc'), [
    { text: 'a', classes: [] },
    { text: 'b', classes: ['ansi-fg-1'] },
  ]);
  assert.deepEqual(parseAnsi('\x1b[31;"onload=x"m'), [{ text: '\x1b[31;"onload=x"m', classes: [] }]);
});

test('the style carries over from one chunk to the next', () => {
  const st = newAnsiState();
  assert.deepEqual(parseAnsi('\x1b[33mone', st), [{ text: 'one', classes: ['ansi-fg-3'] }]);
  assert.deepEqual(parseAnsi('two\x1b[39m', st), [{ text: 'two', classes: ['ansi-fg-3'] }]);
});
