import { describe, expect, it } from 'vitest';
import { cleanText } from '../../src/util/clean-text.js';

describe('cleanText: only printable text from a build reaches a terminal or the report', () => {
  it('removes CSI colour and cursor sequences, OSC title sequences and two-byte escapes', () => {
    expect(cleanText('\u001b[31merror:\u001b[0m bad', 100)).toBe('error: bad');
    expect(cleanText('a\u001b[2J\u001b[Hb', 100)).toBe('ab');
    expect(cleanText('x\u001b]0;pwned title\u0007y', 100)).toBe('xy');
    expect(cleanText('x\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\y', 100)).toBe('xlinky');
    expect(cleanText('x\u001bcy', 100)).toBe('xy'); // ESC c: full terminal reset
    expect(cleanText('x\u009b31my', 100)).toBe('xy'); // 8-bit CSI
  });

  it('removes C0 and C1 control characters, DEL and bidi overrides; a tab becomes a space', () => {
    expect(cleanText('a\u0000b\u0007c\u0008d\u007fe\u0085f\u009fg', 100)).toBe('abcdefg');
    expect(cleanText('a\tb', 100)).toBe('a b');
    expect(cleanText('access\u202e\u2066 check', 100)).toBe('access check');
    expect(cleanText('a lone escape at the end\u001b', 100)).toBe('a lone escape at the end');
  });

  it('turns line breaks into spaces unless asked to keep them (CR LF and a bare CR as one)', () => {
    expect(cleanText('one\ntwo\r\nthree\rfour', 100)).toBe('one two three four');
    expect(cleanText('one\ntwo\r\nthree', 100, { newlines: true })).toBe('one\ntwo\nthree');
  });

  it('caps the length and marks the cut, without splitting a character', () => {
    expect(cleanText('x'.repeat(5000), 100)).toHaveLength(100);
    expect(cleanText('x'.repeat(5000), 100).endsWith('…')).toBe(true);
    expect(cleanText('abc', 3)).toBe('abc');
    const emoji = cleanText(`${'a'.repeat(8)}😀😀`, 10);
    expect(emoji).toBe(`${'a'.repeat(8)}…`);
    expect(cleanText('abc', 0)).toBe('');
  });

  it('leaves ordinary text, UTF-8 included, alone', () => {
    const text = "hello.c:3:2: error: #error 'fails612 does not support kernel 6.12' — ü";
    expect(cleanText(text, 1000)).toBe(text);
  });
});
