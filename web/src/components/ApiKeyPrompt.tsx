import { type FormEvent, useState } from "react"

/** Asks for the API key once (API_KEYS is set on the server); the page keeps it in localStorage. */
export const ApiKeyPrompt = (props: { readonly rejected: boolean; readonly onSubmit: (key: string) => void }) => {
  const [key, setKey] = useState("")
  const submit = (event: FormEvent) => {
    event.preventDefault()
    if (key.trim() !== "") props.onSubmit(key.trim())
  }
  return (
    <div className="modal-backdrop">
      <form className="modal" onSubmit={submit} data-testid="api-key-prompt">
        <h2>API key required</h2>
        <p>This server requires an API key. It is kept in this browser&apos;s storage and sent with every request.</p>
        {props.rejected && <p className="error">That key was not accepted.</p>}
        <input
          type="password"
          autoComplete="off"
          autoFocus
          placeholder="API key"
          aria-label="API key"
          value={key}
          onChange={(e) => setKey(e.target.value)}
        />
        <button type="submit" disabled={key.trim() === ""}>
          Connect
        </button>
      </form>
    </div>
  )
}
