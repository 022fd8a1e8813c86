/**
 * The apiserver serves one event store through two APIs, core/v1 and events.k8s.io/v1,
 * converting field names between them; these convert an event of either shape to each.
 */

type EventObject = { apiVersion?: string; kind?: string; [field: string]: unknown };

/** core/v1 field ↔ events.k8s.io/v1 field, where the names differ. */
const renamed: ReadonlyArray<readonly [string, string]> = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['reportingComponent', 'reportingController'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
];

function rename(event: EventObject, apiVersion: string, from: 0 | 1): EventObject {
  const to = from === 0 ? 1 : 0;
  const result: EventObject = { ...event, apiVersion, kind: 'Event' };
  for (const pair of renamed) {
    const source = pair[from];
    if (source in result) {
      result[pair[to]] = result[source];
      delete result[source];
    }
  }
  return result;
}

export function asCoreEvent(event: EventObject): EventObject {
  return event.apiVersion === 'events.k8s.io/v1' ? rename(event, 'v1', 1) : event;
}

export function asEventsV1Event(event: EventObject): EventObject {
  return event.apiVersion === 'events.k8s.io/v1' ? event : rename(event, 'events.k8s.io/v1', 0);
}
