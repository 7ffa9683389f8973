import type { AggregateId } from '../id.js';

/**
 * Strings that a careless backend would merge: joined with a separator, matched as a pattern (SQL
 * LIKE, Redis glob), case-folded (including `ß` → `SS` and the Turkish dotted and dotless i),
 * Unicode-normalized (NFC, NFKC), trimmed, or sorted by code point instead of by UTF-16 code unit.
 * Each one is a distinct value that must come back exactly as written. None is empty (an empty
 * status or label value means "clear").
 */
export const TRICKY_VALUES: readonly string[] = [
  // Separators and escapes, colliding once joined.
  'a:b',
  'a',
  'b:c',
  'a:',
  ':b',
  'a\x1fb',
  'back\\slash',
  'back\\\\slash',
  'per%cent',
  'per%25cent',
  '%3A',
  // Redis hash tags and glob patterns, SQL LIKE wildcards.
  '{tag}',
  '{tag',
  'tag}',
  'glob*',
  'globby',
  'g?ob',
  'gob',
  '[gl]ob',
  'lob',
  'like_',
  'likeX',
  'like%',
  'like%%',
  "quote'",
  'quote"',
  'quote`',
  // Case folding.
  'Case',
  'case',
  'CASE',
  'straße',
  'STRASSE',
  'strasse',
  'İ',
  'i',
  'I',
  'ı',
  // Unicode normalization: NFC and NFD, a compatibility character and its NFKC form.
  'é',
  'e\u0301',
  'e',
  'Å',
  '\u212b',
  'ﬁ',
  'fi',
  'Ａ',
  // Whitespace that a trimming backend would lose.
  ' pad',
  'pad ',
  'pad',
  'tab\t',
  'new\nline',
  // UTF-16 code unit order differs from code point (UTF-8 byte) order past U+FFFF.
  '\uff5e',
  '\ufffd',
  '🙂',
  '𝐀',
  '日本語',
];

/** IDs that a backend joining parts naively, escaping carelessly, folding case or normalizing would confuse. */
export const TRICKY_IDS: readonly AggregateId[] = [
  ['order:1', 'item'],
  ['order', '1', 'item'],
  ['order', '1:item'],
  ['mem\x1f1', 'item'],
  ['mem', '1\x1fitem'],
  ['back\\slash', 'x'],
  ['back', '\\slash:x'],
  ['per%cent', '%3A'],
  ['per', 'cent%3A'],
  ['{brace}', 'tag'],
  ['{brace', '}tag'],
  ['quote\'"', '`tick`'],
  ['', 'empty first'],
  ['empty last', ''],
  ['*'],
  ['?[a-z]'],
  ['ünïcødé', '日本語', '🙂'],
  ['new\nline', 'tab\there'],
  ['space ', ' space'],
  // Pattern characters: a prefix listing by LIKE or glob would take in the neighbours.
  ['glob*', 'x'],
  ['globby', 'x'],
  ['[gl]ob', 'x'],
  ['lob', 'x'],
  ['like_', 'x'],
  ['likeX', 'x'],
  ['like%', 'x'],
  // Case and normalization: a folding or normalizing backend would merge each group.
  ['Case', 'x'],
  ['case', 'x'],
  ['straße', 'x'],
  ['STRASSE', 'x'],
  ['İ', 'x'],
  ['i', 'x'],
  ['é', 'x'],
  ['e\u0301', 'x'],
  ['ﬁ', 'x'],
  ['fi', 'x'],
];
