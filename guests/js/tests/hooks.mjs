// Node module hooks: resolve the WIT import of the SDK to host-log.mjs.
const stub = new URL("./host-log.mjs", import.meta.url).href;
export async function resolve(specifier, context, next) {
  if (specifier === "sous:reconciler/log@0.2.0") return { url: stub, shortCircuit: true };
  return next(specifier, context);
}
