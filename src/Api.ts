import { HttpApi, OpenApi } from "@effect/platform"
import { InternalError } from "./Domain/Errors.js"
import { HealthGroup } from "./Health/Api.js"
import { HistoryGroup } from "./History/Api.js"
import { finishSpec } from "./Http/OpenApiSpec.js"
import { CompatGroup, MarketsGroup } from "./Markets/Api.js"
import { VERSION } from "./Version.js"

export class Api extends HttpApi.make("mcp-crypto-data-server")
  .add(HealthGroup)
  .add(MarketsGroup)
  .add(CompatGroup)
  .add(HistoryGroup)
  .addError(InternalError)
  .annotate(OpenApi.Title, "mcp-crypto-data-server")
  .annotate(OpenApi.Version, VERSION)
  .annotate(
    OpenApi.Description,
    "Normalized cryptocurrency market data (tickers, OHLCV candles, order books, trades) from many exchanges through CCXT. " +
      "Every error is JSON with a stable `code` and a human `message`. Market responses carry Cache-Control, Age and X-Cache. " +
      "When the server sets API_KEYS, every route but /v1/health and the docs needs a key (X-API-Key or Authorization: Bearer)."
  )
  .annotate(OpenApi.License, { name: "MIT", url: "https://opensource.org/license/mit" })
  .annotate(OpenApi.Servers, [{ url: "/", description: "This server" }])
  .annotate(OpenApi.Transform, finishSpec) {}
