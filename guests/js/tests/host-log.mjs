// Stands in for the host's `sous:reconciler/log@0.2.0` import when the SDK
// runs under Node (unit tests): records what was logged.
export const records = [];
export function log(level, message) {
  records.push([level, message]);
}
