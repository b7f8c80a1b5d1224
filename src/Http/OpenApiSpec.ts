const DECODE_ERROR_REF = "#/components/schemas/HttpApiDecodeError"

const isDecodeErrorRef = (schema: unknown): boolean =>
  typeof schema === "object" && schema !== null && "$ref" in schema && schema.$ref === DECODE_ERROR_REF

const onlyDecodeError = (response: unknown): boolean =>
  typeof response === "object" &&
  response !== null &&
  "content" in response &&
  typeof response.content === "object" &&
  response.content !== null &&
  "application/json" in response.content &&
  typeof response.content["application/json"] === "object" &&
  response.content["application/json"] !== null &&
  "schema" in response.content["application/json"] &&
  isDecodeErrorRef(response.content["application/json"].schema)

const rewrite = (node: unknown, parentKey = ""): unknown => {
  if (Array.isArray(node)) return node.map((item) => rewrite(item))
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    if (parentKey === "responses" && onlyDecodeError(value)) continue
    if (key === "anyOf" && Array.isArray(value)) {
      const kept = value.filter((s) => !isDecodeErrorRef(s)).map((item) => rewrite(item))
      if (kept.length === 1 && typeof kept[0] === "object" && kept[0] !== null) Object.assign(out, kept[0])
      else out[key] = kept
    } else if (key === "description" && value === "The request did not match the expected schema") {
      out[key] = "Bad request: a parameter is missing or invalid, or the exchange is unknown"
    } else {
      out[key] = rewrite(value, key)
    }
  }
  return out
}

/**
 * Bad parameters reach clients as InvalidParameter (see Middleware.ts), never as HttpApi's own
 * HttpApiDecodeError, so the spec documents only what is really sent.
 */
export const documentInvalidParameterOnly = (spec: Record<string, unknown>): Record<string, unknown> => {
  const rewritten = rewrite(spec) as Record<string, unknown>
  const components = (rewritten.components ?? {}) as { readonly schemas?: Record<string, unknown> }
  const { HttpApiDecodeError: _decode, Issue: _issue, PropertyKey: _key, ...schemas } = components.schemas ?? {}
  return { ...rewritten, components: { ...components, schemas } }
}
