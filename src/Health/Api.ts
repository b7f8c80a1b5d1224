import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { HistoryProgress } from "../Store/Progress.js"

export class CircuitHealth extends Schema.Class<CircuitHealth>("CircuitHealth")({
  state: Schema.Literal("closed", "open", "half-open").annotations({
    description: "closed: requests go out; open: none do (banned or failing); half-open: one probe request decides"
  }),
  reason: Schema.NullOr(Schema.Literal("banned", "failing")).annotations({
    description: "banned: the exchange answered 418 and bans this server; failing: too many consecutive failures"
  }),
  retryAfter: Schema.NullOr(Schema.Number).annotations({ description: "Seconds until an open circuit half-opens" }),
  consecutiveFailures: Schema.Number,
  rateLimitedFor: Schema.NullOr(Schema.Number).annotations({
    description: "Seconds left of the pause the exchange asked for with a 429"
  })
}) {}

export class ExchangeHealth extends Schema.Class<ExchangeHealth>("ExchangeHealth")({
  status: Schema.Literal("idle", "ready", "error"),
  marketsLoadedAt: Schema.NullOr(Schema.Number),
  markets: Schema.Number,
  lastError: Schema.NullOr(Schema.String),
  circuit: Schema.optional(CircuitHealth).annotations({
    description: "Circuit breaker of this exchange (present when the resilience layer is installed)"
  })
}) {}

export class ClusterPause extends Schema.Class<ClusterPause>("ClusterPause")({
  reason: Schema.Literal("banned", "rate_limited").annotations({
    description: "banned: an instance got a 418 ban; rate_limited: an instance got a 429"
  }),
  retryAfterMs: Schema.Number.annotations({ description: "Milliseconds left of the pause, for every instance" })
}) {}

export class ClusterHealth extends Schema.Class<ClusterHealth>("ClusterHealth")({
  mode: Schema.Literal("cluster", "local").annotations({
    description:
      "cluster: Redis answers and each market has one upstream for the whole cluster; local: Redis is unreachable and this instance runs its own upstreams and budget until it returns"
  }),
  instanceId: Schema.String.annotations({ description: "This instance (host, process id and a random part)" }),
  markets: Schema.Array(
    Schema.Struct({
      market: Schema.String.annotations({ description: "exchange, channel, symbol and interval" }),
      role: Schema.Literal("owner", "follower", "local", "starting").annotations({
        description:
          "owner: runs the upstream for the cluster; follower: receives another instance's; local: runs its own while Redis is away"
      }),
      subscribers: Schema.Number.annotations({ description: "Local attachments to the market" })
    })
  ),
  circuits: Schema.Record({ key: Schema.String, value: Schema.NullOr(ClusterPause) }).annotations({
    description:
      "The shared 429 pause or 418 ban of each exchange (null: none), as every instance sees it; empty in local mode"
  })
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
  }),
  history: Schema.optional(Schema.Array(HistoryProgress)).annotations({
    description: "HISTORY_BACKFILL series and how complete each is (present when backfill is configured)"
  }),
  cluster: Schema.optional(ClusterHealth).annotations({
    description:
      "Cluster mode: this instance's mode, its markets' roles and the shared pauses (present when CLUSTER_ENABLED)"
  })
}) {}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/v1/health")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness and the state of each dependency")
  )
  .annotate(OpenApi.Title, "Health")
  .annotate(OpenApi.Description, "Liveness probe: public, never rate limited") {}
