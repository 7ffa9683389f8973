import { describe, expect, it } from 'vitest';
import { hasLoneSurrogate } from '../src/text.js';

describe('hasLoneSurrogate', () => {
  it('accepts well-formed text, astral characters included', () => {
    for (const text of ['', 'order', 'ü', '🙂', 'a🙂b', '\uD83D\uDE42', '\u{10FFFF}', '\uFFFD', '\uE000']) {
      expect(hasLoneSurrogate(text), JSON.stringify(text)).toBe(false);
    }
  });

  it('finds a high or low surrogate without its partner, anywhere', () => {
    for (const text of ['\uD800', '\uDC00', 'a\uD83D', '\uDE42b', 'x\uD83Dy', '\uDC00\uD800', '🙂\uD83D', '\uDE42🙂']) {
      expect(hasLoneSurrogate(text), JSON.stringify(text)).toBe(true);
    }
  });
});
