// A small client of the OCI distribution HTTP API (plain http, no auth) for checking what the
// builds pushed: manifests, their media types and digests, layer sizes, platform entries.
import { createHash } from "node:crypto";

export const MANIFEST_TYPES = {
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
} as const;
const ACCEPT = Object.values(MANIFEST_TYPES).join(", ");

export function isIndex(mediaType: string): boolean {
  return mediaType === MANIFEST_TYPES.dockerList || mediaType === MANIFEST_TYPES.ociIndex;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface Manifest {
  mediaType: string;
  digest: string;
  /** Bytes of the manifest document itself. */
  size: number;
  /** Single-image manifests. */
  config?: Descriptor;
  layers?: Descriptor[];
  /** Indexes / manifest lists. */
  manifests?: Descriptor[];
  raw: string;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  config: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; WorkingDir?: string };
  rootfs: { diff_ids: string[] };
}

export class RegistryClient {
  constructor(readonly baseUrl: string) {}

  /** HEAD the manifest; undefined when the tag does not exist. */
  async headDigest(repo: string, reference: string): Promise<string | undefined> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/manifests/${reference}`, {
      method: "HEAD",
      headers: { Accept: ACCEPT },
    });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`registry HEAD ${repo}:${reference}: HTTP ${res.status}`);
    return res.headers.get("docker-content-digest") ?? undefined;
  }

  async manifest(repo: string, reference: string): Promise<Manifest> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
    if (!res.ok) throw new Error(`registry GET manifest ${repo}:${reference}: HTTP ${res.status}`);
    const raw = await res.text();
    const doc = JSON.parse(raw);
    const mediaType = doc.mediaType ?? (res.headers.get("content-type") ?? "").split(";")[0];
    return {
      mediaType,
      digest: res.headers.get("docker-content-digest") ?? `sha256:${createHash("sha256").update(raw).digest("hex")}`,
      size: Buffer.byteLength(raw),
      config: doc.config,
      layers: doc.layers,
      manifests: doc.manifests,
      raw,
    };
  }

  /** The single-image manifest for `platform` ("linux/arm64"); follows an index if there is one. */
  async imageManifest(repo: string, reference: string, platform?: string): Promise<Manifest> {
    const m = await this.manifest(repo, reference);
    if (!isIndex(m.mediaType)) return m;
    const [os, architecture] = (platform ?? "linux/amd64").split("/");
    const d = m.manifests!.find((x) => x.platform?.os === os && x.platform?.architecture === architecture);
    if (!d) throw new Error(`${repo}:${reference} has no ${platform} entry`);
    return this.manifest(repo, d.digest);
  }

  async blobJson<T>(repo: string, digest: string): Promise<T> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/blobs/${digest}`);
    if (!res.ok) throw new Error(`registry GET blob ${repo}@${digest}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  async imageConfig(repo: string, m: Manifest): Promise<ImageConfig> {
    if (!m.config) throw new Error(`${repo}@${m.digest} is not a single-image manifest`);
    return this.blobJson<ImageConfig>(repo, m.config.digest);
  }

  async tags(repo: string): Promise<string[]> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/tags/list`);
    if (res.status === 404) return [];
    if (!res.ok) throw new Error(`registry tags ${repo}: HTTP ${res.status}`);
    return ((await res.json()) as { tags: string[] | null }).tags ?? [];
  }

  async catalog(): Promise<string[]> {
    const res = await fetch(`${this.baseUrl}/v2/_catalog?n=1000`);
    return ((await res.json()) as { repositories: string[] }).repositories ?? [];
  }
}

/** Upload and download helpers (used to cache the stand-in image between runs). */
export class RegistryWriter extends RegistryClient {
  async blob(repo: string, digest: string): Promise<Buffer> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/blobs/${digest}`);
    if (!res.ok) throw new Error(`registry GET blob ${repo}@${digest}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
    return res.ok;
  }

  /** Monolithic upload: POST an upload session, PUT the bytes with ?digest=. */
  async pushBlob(repo: string, digest: string, data: Buffer): Promise<void> {
    if (await this.hasBlob(repo, digest)) return;
    const start = await fetch(`${this.baseUrl}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    if (start.status !== 202) throw new Error(`registry upload start ${repo}: HTTP ${start.status}`);
    const loc = new URL(start.headers.get("location")!, this.baseUrl);
    loc.searchParams.set("digest", digest);
    const put = await fetch(loc, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(data.length) },
      body: data,
    });
    if (put.status !== 201) throw new Error(`registry upload ${repo}@${digest}: HTTP ${put.status} ${await put.text()}`);
  }

  async putManifest(repo: string, reference: string, mediaType: string, body: string | Buffer): Promise<string> {
    const res = await fetch(`${this.baseUrl}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { "Content-Type": mediaType },
      body,
    });
    if (res.status !== 201) throw new Error(`registry PUT manifest ${repo}:${reference}: HTTP ${res.status} ${await res.text()}`);
    return res.headers.get("docker-content-digest") ?? "";
  }
}
