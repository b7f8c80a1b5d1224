import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either } from "effect"
import { AppConfig } from "../AppConfig.js"
import { Unauthorized } from "../Domain/Errors.js"
import {
  type AdmissionPolicy,
  type AdmissionVerdict,
  makeAdmissionPolicy,
  platformAdmissionRequest
} from "./Admission.js"
import { RateLimiter } from "./RateLimit.js"
import { errorResponse, withHeaders } from "./Responses.js"

/** Admitted, with the headers to add to the answer (the rate-limit state), or refused with this response. */
export type AdmissionDecision = Either.Either<Readonly<Record<string, string>>, HttpServerResponse.HttpServerResponse>

export interface Admission {
  readonly policy: AdmissionPolicy
  /** The verdict of a request on the Effect path. */
  readonly verdictOf: (request: HttpServerRequest.HttpServerRequest) => AdmissionVerdict
  /** The verdict's 401, or its count in the rate limit: admitted with the RateLimit headers, or the 429. */
  readonly decide: (verdict: AdmissionVerdict) => Effect.Effect<AdmissionDecision>
  /** `decide` as middleware: a refused request gets its refusal, an admitted one the rate-limit headers. */
  readonly guard: <E, R>(
    verdict: AdmissionVerdict,
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
}

const NO_HEADERS: Readonly<Record<string, string>> = {}
const admitted: AdmissionDecision = Either.right(NO_HEADERS)

const KEY_REQUIRED = "An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>"

const unauthorized = (message: string): AdmissionDecision =>
  Either.left(
    HttpServerResponse.setHeader(
      errorResponse(new Unauthorized({ message })),
      "www-authenticate",
      'Bearer realm="mcp-crypto-data-server"'
    )
  )

/**
 * The admission policy (Admission.ts) with the inbound rate limit counted in the server's RateLimiter, for the
 * global middleware and the stream gateway; the hot cache counts in the same RateLimiter (HotCache.ts).
 */
export const makeAdmission = Effect.gen(function* () {
  const config = yield* AppConfig
  const rateLimit = yield* RateLimiter
  const policy = makeAdmissionPolicy(config)
  const keyRequired = unauthorized(KEY_REQUIRED)
  const keyRequiredOnStream = unauthorized(`${KEY_REQUIRED} (or, on stream routes, as the api_key query parameter)`)
  const keyInvalid = unauthorized("The API key is not valid")

  const verdictOf = (request: HttpServerRequest.HttpServerRequest): AdmissionVerdict =>
    policy.verdict(platformAdmissionRequest(request))

  const decide = (verdict: AdmissionVerdict): Effect.Effect<AdmissionDecision> => {
    if (verdict.refusal === "missing_key") {
      return Effect.succeed(verdict.route.stream ? keyRequiredOnStream : keyRequired)
    }
    if (verdict.refusal === "invalid_key") return Effect.succeed(keyInvalid)
    if (verdict.bucket === undefined) return Effect.succeed(admitted)
    return Effect.flatMap(rateLimit.check(verdict.bucket), (decision): Effect.Effect<AdmissionDecision> =>
      decision.allowed
        ? Effect.succeed(Either.right(decision.headers))
        : Effect.map(rateLimit.rejected(decision), Either.left)
    )
  }

  const guard = <E, R>(
    verdict: AdmissionVerdict,
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
    Effect.flatMap(decide(verdict), (decision) => {
      if (Either.isLeft(decision)) return Effect.succeed(decision.left)
      const headers = decision.right
      return headers === NO_HEADERS ? app : Effect.map(app, (response) => withHeaders(response, headers))
    })

  return { policy, verdictOf, decide, guard } satisfies Admission
})
