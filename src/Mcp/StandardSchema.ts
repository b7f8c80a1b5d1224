import type { StandardSchemaWithJSON } from "@modelcontextprotocol/server"
import { JSONSchema, Schema } from "effect"

type JsonObject = Record<string, unknown>

const isRecord = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Effect titles every refinement ("between(1, 200)"); they only add noise to what the model reads. `$schema` goes
 * too: MCP reads a schema without it as 2020-12, while a draft-07 validator (SDK 1.x clients) refuses to compile a
 * schema naming a meta-schema it does not know.
 */
const DROPPED_KEYS: ReadonlySet<string> = new Set(["title", "$schema"])

const withoutTitles = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(withoutTitles)
  if (!isRecord(node)) return node
  return Object.fromEntries(
    Object.entries(node).flatMap(([k, v]) => (DROPPED_KEYS.has(k) ? [] : [[k, withoutTitles(v)]]))
  )
}

const isEmptyStruct = (schema: Schema.Schema.Any): boolean =>
  schema.ast._tag === "TypeLiteral" &&
  schema.ast.propertySignatures.length === 0 &&
  schema.ast.indexSignatures.length === 0

/** JSON Schema (2020-12, with no keyword that draft-07 reads otherwise) of the encoded side: what a client sends, or what structuredContent holds. */
export const toJsonSchema = (schema: Schema.Schema.Any): JsonObject => {
  // Effect renders `{}` as "object or array"; MCP wants a tool without arguments to say "empty object"
  if (isEmptyStruct(schema)) return { type: "object", properties: {}, additionalProperties: false }
  const json = withoutTitles(JSONSchema.make(schema, { target: "jsonSchema2020-12" }))
  return isRecord(json) ? json : {}
}

const memoJson = (schema: Schema.Schema.Any) => {
  let json: JsonObject | undefined
  return () => (json ??= toJsonSchema(schema))
}

/**
 * An Effect Schema as a Standard Schema with JSON Schema: the SDK validates with it and lists its JSON Schema.
 * Excess properties are refused, as the listed `additionalProperties: false` makes clients do.
 */
export const standardSchema = <A, I>(schema: Schema.Schema<A, I>): StandardSchemaWithJSON<I, A> => {
  const standard = Schema.standardSchemaV1(schema, { onExcessProperty: "error" })["~standard"]
  const json = memoJson(schema)
  return {
    "~standard": {
      version: 1,
      vendor: "effect",
      validate: (value) => standard.validate(value),
      jsonSchema: { input: json, output: json }
    }
  }
}

/**
 * Lists the schema's JSON Schema but accepts any arguments: the tool decodes them itself so that invalid arguments
 * come back in the same error shape as every other tool error (the SDK would answer with bare text).
 */
export const deferredInputSchema = (schema: Schema.Schema.Any): StandardSchemaWithJSON<unknown, unknown> => {
  const json = memoJson(schema)
  return {
    "~standard": {
      version: 1,
      vendor: "effect",
      validate: (value) => ({ value }),
      jsonSchema: { input: json, output: json }
    }
  }
}
