// TEST-ONLY FAKE of the AWS control-plane HTTP APIs (AWS JSON 1.1 protocol). This is NOT AWS.
//
// A tiny HTTP server on 127.0.0.1 that dispatches `POST /` requests on their `X-Amz-Target`
// header (e.g. `CodeBuild_20161006.StartBuild`) to plain functions, so the real AWS SDK v3 can
// be pointed at it with `AWS_ENDPOINT_URL`. It neither checks signatures nor models IAM.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeCall {
  /** Full target, e.g. `CodeBuild_20161006.StartBuild`. */
  target: string;
  /** Operation name only, e.g. `StartBuild`. */
  operation: string;
  input: any;
  headers: IncomingHttpHeaders;
  /** Milliseconds since the fake started. */
  at: number;
  /** What the fake answered: a JSON body or an error type. */
  response?: { status: number; errorType?: string };
}

/** Throw this from a handler to answer with an AWS-style JSON error. */
export class FakeAwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Return this from a handler to answer 200 with exactly `body` (e.g. a response the SDK cannot read). */
export class RawResponse {
  constructor(readonly body: string) {}
}

/** Handlers keyed by operation name (`StartBuild`) or full target (`CodeBuild_20161006.StartBuild`). */
export type FakeHandler = (input: any, call: FakeCall) => unknown | Promise<unknown>;
export type FakeHandlers = Record<string, FakeHandler>;

export interface FakeAws {
  /** `http://127.0.0.1:PORT`, suitable for `AWS_ENDPOINT_URL`. */
  endpoint: string;
  calls: FakeCall[];
  /** Calls of one operation, in arrival order. */
  callsOf(operation: string): FakeCall[];
  close(): Promise<void>;
}

export async function startFakeAws(handlers: FakeHandlers): Promise<FakeAws> {
  const started = Date.now();
  const calls: FakeCall[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const target = String(req.headers["x-amz-target"] ?? "");
        const operation = target.includes(".") ? target.slice(target.lastIndexOf(".") + 1) : target;
        const raw = Buffer.concat(chunks).toString("utf8");
        let input: any = {};
        try {
          input = raw ? JSON.parse(raw) : {};
        } catch {
          input = { __unparseable: raw };
        }
        const call: FakeCall = { target, operation, input, headers: req.headers, at: Date.now() - started };
        calls.push(call);
        const reply = (status: number, body: unknown, errorType?: string) => {
          if (body instanceof RawResponse) {
            call.response = { status };
            res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": `fake-${calls.length}` });
            res.end(body.body);
            return;
          }
          call.response = { status, errorType };
          const headers: Record<string, string> = {
            "content-type": "application/x-amz-json-1.1",
            "x-amzn-requestid": `fake-${calls.length}`,
          };
          if (errorType) headers["x-amzn-errortype"] = errorType;
          res.writeHead(status, headers);
          res.end(JSON.stringify(body));
        };
        const handler = handlers[target] ?? handlers[operation];
        if (req.method !== "POST" || !handler) {
          const type = "UnknownOperationException";
          reply(400, { __type: type, message: `fake AWS: no handler for ${req.method} ${target || "(no X-Amz-Target)"}` }, type);
          return;
        }
        try {
          reply(200, (await handler(input, call)) ?? {});
        } catch (err) {
          if (err instanceof FakeAwsError) {
            reply(err.status, { __type: err.type, message: err.message }, err.type);
          } else {
            const type = "InternalFailure";
            reply(500, { __type: type, message: `fake AWS handler crashed: ${(err as Error)?.message}` }, type);
          }
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    callsOf: (operation) => calls.filter((c) => c.operation === operation),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
