import * as zlib from 'node:zlib';

let table: Uint32Array | null = null;

/** The reflected CRC-32 (IEEE 802.3) table, built on first use when zlib has no crc32. */
function crcTable(): Uint32Array {
  if (table !== null) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

function tableCrc32(data: Uint8Array, previous = 0): number {
  const t = crcTable();
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = (t[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// zlib.crc32 only exists from Node 20.15; the package supports 20.6, so fall back to a table.
const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/**
 * CRC-32 (IEEE) of `data`, the same value as `zlib.crc32`; with `previous`, the CRC of the bytes
 * whose CRC was `previous` followed by `data`, so a large input can be checked piece by piece.
 */
export const crc32: (data: Uint8Array, previous?: number) => number =
  typeof native === 'function' ? (data, previous = 0) => native(data, previous) >>> 0 : tableCrc32;

/** Exposed for the test that checks the fallback agrees with zlib. */
export const crc32Fallback = tableCrc32;
