import type { EventRecord } from '@timebox/core';

/**
 * One stored event as one list element: `<timestamp>:<type length>:<type><data>`. The sequence is
 * not stored; it follows from the element's position and the aggregate's trim offset. Scripts
 * never look inside, so the format is the client's alone.
 */
export function encodeEvent(event: EventRecord): string {
  return `${event.timestamp}:${event.type.length}:${event.type}${event.data}`;
}

/** Reverses `encodeEvent`, numbering the event `sequence`. */
export function decodeEvent(element: string, sequence: number): EventRecord {
  const timeEnd = element.indexOf(':');
  const lengthEnd = element.indexOf(':', timeEnd + 1);
  const typeEnd = lengthEnd + 1 + Number(element.slice(timeEnd + 1, lengthEnd));
  if (timeEnd < 1 || lengthEnd < 0 || !(typeEnd <= element.length)) {
    throw new Error(`redis backend: stored event ${sequence} is malformed (${JSON.stringify(element.slice(0, 40))})`);
  }
  return {
    type: element.slice(lengthEnd + 1, typeEnd),
    sequence,
    timestamp: Number(element.slice(0, timeEnd)),
    data: element.slice(typeEnd),
  };
}

/** Decodes consecutive elements, the first numbered `firstSequence`. */
export function decodeEvents(elements: readonly string[], firstSequence: number): EventRecord[] {
  const events: EventRecord[] = new Array<EventRecord>(elements.length);
  for (let i = 0; i < elements.length; i++) events[i] = decodeEvent(elements[i] as string, firstSequence + i);
  return events;
}
