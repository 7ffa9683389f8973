import type { EventRecord, StoredEventRecord } from '@timebox/core';

/**
 * The part of a stored event the client writes: `<timestamp>:<type length>:<type><data>`. The
 * append script prepends `<position>:` (only it knows the position), so a stored element is
 * `<position>:<timestamp>:<type length>:<type><data>`. The sequence is not stored; it follows from
 * the element's place in the list and the aggregate's trim offset. Scripts read only the position
 * and, to filter the log by type, the type.
 */
export function encodeEvent(event: EventRecord): string {
  return `${event.timestamp}:${event.type.length}:${event.type}${event.data}`;
}

/** Reverses the append script's element format, numbering the event `sequence`. */
export function decodeEvent(element: string, sequence: number): StoredEventRecord {
  const positionEnd = element.indexOf(':');
  const timeEnd = element.indexOf(':', positionEnd + 1);
  const lengthEnd = element.indexOf(':', timeEnd + 1);
  const typeEnd = lengthEnd + 1 + Number(element.slice(timeEnd + 1, lengthEnd));
  const position = Number(element.slice(0, positionEnd));
  if (positionEnd < 1 || timeEnd < 0 || lengthEnd < 0 || !(typeEnd <= element.length) || !Number.isSafeInteger(position)) {
    throw new Error(`redis backend: stored event ${sequence} is malformed (${JSON.stringify(element.slice(0, 40))})`);
  }
  return {
    type: element.slice(lengthEnd + 1, typeEnd),
    sequence,
    timestamp: Number(element.slice(positionEnd + 1, timeEnd)),
    data: element.slice(typeEnd),
    position,
  };
}

/** Decodes consecutive elements of one aggregate, the first numbered `firstSequence`. */
export function decodeEvents(elements: readonly string[], firstSequence: number): StoredEventRecord[] {
  const events: StoredEventRecord[] = new Array<StoredEventRecord>(elements.length);
  for (let i = 0; i < elements.length; i++) events[i] = decodeEvent(elements[i] as string, firstSequence + i);
  return events;
}

/** The position an element starts with, without decoding the rest. */
export function elementPosition(element: string): number {
  return Number(element.slice(0, element.indexOf(':')));
}
