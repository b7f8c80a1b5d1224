import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"

export class ExchangeHealth extends Schema.Class<ExchangeHealth>("ExchangeHealth")({
  status: Schema.Literal("idle", "ready", "error"),
  marketsLoadedAt: Schema.NullOr(Schema.Number),
  markets: Schema.Number,
  lastError: Schema.NullOr(Schema.String)
}) {}

export class Health extends Schema.Class<Health>("Health")({
  status: Schema.Literal("ok"),
  uptime: Schema.Number.annotations({ description: "Seconds since the process started serving" }),
  version: Schema.String,
  dependencies: Schema.Struct({
    redis: Schema.Struct({
      status: Schema.Literal("up", "down", "disabled"),
      cache: Schema.Literal("redis", "memory").annotations({ description: "Where the cache reads and writes now" })
    }),
    exchanges: Schema.Record({ key: Schema.String, value: ExchangeHealth })
  })
}) {}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/v1/health")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness and the state of each dependency")
  )
  .annotate(OpenApi.Title, "Health") {}
