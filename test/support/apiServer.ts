import { HttpClient, HttpClientRequest, HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, type Ref } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache } from "../../src/Cache/KvCache.js"
import { KvCacheLive } from "../../src/Cache/Live.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import { AppRoutes } from "../../src/Routes.js"
import { makeMockExchange } from "./mockExchange.js"

export class UpstreamCalls extends Context.Tag("test/UpstreamCalls")<
  UpstreamCalls,
  Ref.Ref<Record<string, number>>
>() {}

const MockExchangeLive = Layer.unwrapEffect(
  Effect.map(makeMockExchange, (mock) => Layer.merge(mock.layer, Layer.succeed(UpstreamCalls, mock.calls)))
)

const DisabledRedisStatus = Layer.effect(
  KvCache,
  Effect.map(KvCache, (memory) => ({
    ...memory,
    status: Effect.succeed({ backend: "memory" as const, redis: "disabled" as const })
  }))
).pipe(Layer.provide(MemoryKvCacheLive({ maxEntries: 1000 })))

/**
 * The real routes and caches over a real socket, with the mock Exchange and test config. The cache is in memory
 * unless `redis: true`, which uses the live KvCache configured from `env` (REDIS_URL, ...).
 */
export const ApiTestServer = (env: Record<string, string> = {}, options: { readonly redis?: boolean } = {}) =>
  HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(MarketQueriesLive),
    Layer.provide(ResponseCacheLive),
    Layer.provideMerge(options.redis === true ? KvCacheLive : DisabledRedisStatus),
    Layer.provideMerge(MockExchangeLive),
    Layer.provideMerge(
      AppConfig.fromRecord({
        REDIS_ENABLED: options.redis === true ? "true" : "false",
        RATE_LIMIT_ENABLED: "false",
        ...env
      })
    ),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

export interface JsonResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly json: unknown
}

/** GET a path on the test server and read the whole body. */
export const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(HttpClientRequest.get(path, { headers }))
    const text = yield* response.text
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json } satisfies JsonResponse
  }).pipe(Effect.scoped)
