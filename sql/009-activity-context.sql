-- The session chat log in the brief's layout (issue 15, item 4): a failure's entry says what
-- failed and where. context: the request, `<METHOD> <URL>` over HTTP, `RPC <method>` or
-- `WS <type>` over a WebSocket. message: the error's message (a 500's is the generic one outside
-- development). stack: a 5xx's stack trace, kept only when NODE_ENV=development.
ALTER TABLE activity ADD COLUMN context text;
ALTER TABLE activity ADD COLUMN message text;
ALTER TABLE activity ADD COLUMN stack text;
