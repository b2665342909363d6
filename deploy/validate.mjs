#!/usr/bin/env node
// Validates rendered Kubernetes manifests: every object against the Kubernetes OpenAPI schema (the validators
// generated into the npm packages kubernetes-models and @kubernetes-models/keda), then the project's own rules
// (resources, non-root, read-only root filesystem, probes, network isolation, autoscaling, GPU placement, and
// that every image has a Dockerfile that builds it).
//
//   node deploy/validate.mjs --all                          render every overlay with `kubectl kustomize` and check
//                                                           it, then check every deploy/docker/*.Dockerfile
//   kubectl kustomize deploy/k8s/overlays/gpu | node deploy/validate.mjs --overlay gpu -
//   node deploy/validate.mjs --schema-only manifest.yaml    the schema alone, for any manifest
//   node deploy/validate.mjs --dockerfile FILE              one Dockerfile (context: the repository root)
//
// Exits 0 when everything is valid; otherwise prints one line per problem ("<source>: <Kind>/<name>: <problem>")
// on stderr and exits 1. Usage errors exit 2.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const deployDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(deployDir);
const overlaysDir = join(deployDir, "k8s", "overlays");
const dockerDir = join(deployDir, "docker");

// ---------------------------------------------------------------------------------------------------------------
// Schema validation

// Each API group version is a module of its own; only those the input uses are loaded (loading every one takes
// seconds, one takes a fraction of that).
const modelPackages = ["kubernetes-models", "@kubernetes-models/keda"];
const modelModules = new Map();

async function modelClass(apiVersion, kind) {
  if (!/^([a-z0-9-]+(\.[a-z0-9-]+)*\/)?v\d+((alpha|beta)\d+)?$/.test(apiVersion)) return undefined;
  for (const name of modelPackages) {
    const specifier = `${name}/${apiVersion}`;
    if (!modelModules.has(specifier)) modelModules.set(specifier, import(specifier).catch(() => null));
    const Model = (await modelModules.get(specifier))?.[kind];
    if (typeof Model === "function" && Model.apiVersion === apiVersion && Model.kind === kind) return Model;
  }
  return undefined;
}

// The packages also carry API versions that current clusters no longer serve (extensions/v1beta1,
// autoscaling/v2beta2…). Pre-release versions are accepted only where they are the current version.
const currentPreReleaseVersions = new Set(["keda.sh/v1alpha1"]);

// kustomize wraps long base64 values in Secret data at 70 columns. The API server's base64 decoder (Go's
// encoding/base64) skips line breaks, but the schema's "byte" format does not: compare what the server decodes.
function withoutBase64LineBreaks(object) {
  if (object.kind !== "Secret" || !object.data || typeof object.data !== "object") return object;
  const data = Object.fromEntries(
    Object.entries(object.data).map(([key, value]) => [key, typeof value === "string" ? value.replace(/[\r\n]/g, "") : value]),
  );
  return { ...object, data };
}

async function schemaProblems(object) {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required"];
  if (/v\d+(alpha|beta)\d*$/.test(apiVersion) && !currentPreReleaseVersions.has(apiVersion)) {
    return [`${apiVersion} is a pre-release API version that current clusters do not serve`];
  }
  const Model = await modelClass(apiVersion, kind);
  if (!Model) return [`unknown kind ${kind} in ${apiVersion}: no schema to validate it against`];
  try {
    new Model(withoutBase64LineBreaks(object)).validate();
  } catch (error) {
    // ajv's message lists every violation as "data/<path> <message>", comma-separated.
    return [`schema: ${error.message}`];
  }
  const file = modelDeclaration(apiVersion, kind);
  if (!file) return [`no type declarations for ${apiVersion}/${kind} to check its field names against`];
  return unknownFields(object, { file }, "", []).map((p) => `schema: ${p}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Unknown fields
//
// The generated schemas leave objects open (no additionalProperties: false), so a misspelt field such as
// `readinesProbe` passes them, while the API server rejects it (kubectl's default strict field validation) or
// drops it. The packages' type declarations list every field of every type: walk each object along them.

const packageRoots = modelPackages.map((name) =>
  dirname(fileURLToPath(import.meta.resolve(name))),
);
const declarations = new Map(); // .d.ts path → Map(field → type) of its interface, or null (a type alias)

function declarationFile(specifier, fromFile) {
  const path = specifier.startsWith(".") ? join(dirname(fromFile), specifier) : fileURLToPath(import.meta.resolve(specifier));
  return path.replace(/\.js$/, "") + ".d.ts";
}

function parseType(text, imports) {
  const array = /^Array<(.+)>$/.exec(text);
  if (array) return { array: parseType(array[1], imports) };
  return imports.has(text) ? { file: imports.get(text) } : null; // null: a primitive, an enum, or not followed
}

function declaredFields(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const [, names, specifier] of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    for (const name of names.split(",").map((n) => n.trim())) imports.set(name, declarationFile(specifier, file));
  }
  const body = /^export interface I\w+(?: extends [^{]+)? \{\n([\s\S]*?)^\}/m.exec(text);
  let fields = null;
  if (body) {
    fields = new Map();
    const lines = body[1].split("\n");
    for (let i = 0; i < lines.length; i++) {
      const field = /^ {4}"([^"]+)"\??: (.*);?$/.exec(lines[i]);
      if (!field) continue;
      const type = field[2].replace(/;$/, "");
      const map = type === "{" && /^ {8}\[key: string\]: (.+);$/.exec(lines[i + 1] ?? "");
      fields.set(field[1], map ? { map: parseType(map[1], imports) } : parseType(type, imports));
    }
  }
  declarations.set(file, fields);
  return fields;
}

function modelDeclaration(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  for (const root of packageRoots) {
    const file = group ? join(root, group, version, `${kind}.d.ts`) : join(root, version, `${kind}.d.ts`);
    if (existsSync(file)) return file;
  }
  return null;
}

function unknownFields(value, type, path, problems) {
  if (!type || value === null || typeof value !== "object") return problems;
  if (type.array) {
    if (Array.isArray(value)) value.forEach((item, i) => unknownFields(item, type.array, `${path}/${i}`, problems));
  } else if (type.map) {
    for (const [key, item] of Object.entries(value)) unknownFields(item, type.map, `${path}/${key}`, problems);
  } else if (type.file && !Array.isArray(value)) {
    const fields = declaredFields(type.file);
    if (!fields) return problems;
    for (const [key, item] of Object.entries(value)) {
      if (!fields.has(key)) problems.push(`unknown field ${path}/${key}`);
      else unknownFields(item, fields.get(key), `${path}/${key}`, problems);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Project rules

const workloadKinds = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const id = (o) => `${o.kind}/${o.metadata?.name ?? "?"}`;
const selects = (selector, labels) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);

/** Dockerfiles by image name: deploy/docker/<name>.Dockerfile builds image <registry>/<name>:<tag>. */
function dockerfiles() {
  const byImage = new Map();
  for (const file of readdirSync(dockerDir)) {
    if (file.endsWith(".Dockerfile")) byImage.set(file.slice(0, -".Dockerfile".length), join(dockerDir, file));
  }
  return byImage;
}

function exposedPorts(dockerfile) {
  const ports = new Set();
  for (const match of readFileSync(dockerfile, "utf8").matchAll(/^EXPOSE\s+(.+)$/gm)) {
    for (const port of match[1].trim().split(/\s+/)) ports.add(Number.parseInt(port, 10));
  }
  return ports;
}

function containerProblems(container, pod, images, { init = false, tlsGrpc = false } = {}) {
  const problems = [];
  const where = `container ${container.name}`;
  const resources = container.resources ?? {};
  for (const kind of ["requests", "limits"]) {
    for (const resource of ["cpu", "memory"]) {
      if (resources[kind]?.[resource] === undefined) problems.push(`${where}: no ${resource} ${kind}`);
    }
  }
  const security = container.securityContext ?? {};
  if (security.runAsNonRoot !== true && pod.securityContext?.runAsNonRoot !== true) {
    problems.push(`${where}: runAsNonRoot is not true (container or pod securityContext)`);
  }
  if (security.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
  if (security.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
  if (!security.capabilities?.drop?.includes("ALL")) problems.push(`${where}: capabilities do not drop ALL`);
  // The rest of the "restricted" Pod Security Standard the namespace enforces.
  const seccomp = (security.seccompProfile ?? pod.securityContext?.seccompProfile)?.type;
  if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push(`${where}: no RuntimeDefault or Localhost seccompProfile`);
  // Init containers run to completion before the pod starts: the kubelet does not probe them.
  for (const probe of init ? [] : ["startupProbe", "livenessProbe", "readinessProbe"]) {
    if (!container[probe]) problems.push(`${where}: no ${probe}`);
  }
  // A gRPC port is health-checked by the kubelet's native gRPC probe (grpc.health.v1.Health/Check) — unless it
  // serves TLS, which that probe cannot speak: then readiness is GET /readyz on the management port.
  for (const port of container.ports ?? []) {
    if (port.name === "grpc" && tlsGrpc) {
      if (container.readinessProbe?.httpGet?.path !== "/readyz" || container.readinessProbe?.httpGet?.port !== "management") {
        problems.push(`${where}: gRPC port ${port.containerPort} serves TLS but readiness is not GET /readyz on the management port`);
      }
    } else if (port.name === "grpc" && container.readinessProbe?.grpc?.port !== port.containerPort) {
      problems.push(`${where}: gRPC port ${port.containerPort} has no grpc readinessProbe on it`);
    }
  }

  const image = String(container.image ?? "");
  const match = /^(?:.+\/)?([^/:@]+)(?::([^/@]+))?(?:@.+)?$/.exec(image);
  if (!match) {
    problems.push(`${where}: image "${image}" cannot be parsed`);
  } else {
    const [, name, tag] = match;
    if (!tag && !image.includes("@")) problems.push(`${where}: image ${image} has no tag`);
    if (tag === "latest") problems.push(`${where}: image ${image} uses the tag "latest"`);
    const dockerfile = images.get(name);
    if (!dockerfile) {
      problems.push(`${where}: image ${image} has no Dockerfile (expected deploy/docker/${name}.Dockerfile)`);
    } else {
      const exposed = exposedPorts(dockerfile);
      for (const port of container.ports ?? []) {
        if (!exposed.has(port.containerPort)) {
          problems.push(`${where}: port ${port.containerPort} is not EXPOSEd by ${relative(repoRoot, dockerfile)}`);
        }
      }
    }
  }
  return problems;
}

// A pod annotated for Prometheus (prometheus.io/scrape: "true") names a port its containers declare and a path.
function scrapeProblems(template) {
  const annotations = template?.metadata?.annotations ?? {};
  if (annotations["prometheus.io/scrape"] !== "true") return [];
  const problems = [];
  const port = Number.parseInt(annotations["prometheus.io/port"] ?? "", 10);
  const declared = (template.spec?.containers ?? []).flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
  if (!declared.includes(port)) {
    problems.push(`prometheus.io/port ${annotations["prometheus.io/port"] ?? "(unset)"} is not a declared container port`);
  }
  if (!String(annotations["prometheus.io/path"] ?? "").startsWith("/")) problems.push("prometheus.io/path is not an absolute path");
  return problems;
}

function referenceProblems(pod, byKindName) {
  const problems = [];
  const need = (kind, name, what) => {
    if (!byKindName.has(`${kind}/${name}`)) problems.push(`${what} refers to ${kind}/${name}, which is not in the manifests`);
  };
  for (const container of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
    for (const source of container.envFrom ?? []) {
      if (source.configMapRef) need("ConfigMap", source.configMapRef.name, `container ${container.name} envFrom`);
      if (source.secretRef) need("Secret", source.secretRef.name, `container ${container.name} envFrom`);
    }
    for (const variable of container.env ?? []) {
      const from = variable.valueFrom ?? {};
      if (from.configMapKeyRef) need("ConfigMap", from.configMapKeyRef.name, `env ${variable.name}`);
      if (from.secretKeyRef) need("Secret", from.secretKeyRef.name, `env ${variable.name}`);
    }
  }
  for (const volume of pod.volumes ?? []) {
    if (volume.persistentVolumeClaim) need("PersistentVolumeClaim", volume.persistentVolumeClaim.claimName, `volume ${volume.name}`);
    if (volume.configMap) need("ConfigMap", volume.configMap.name, `volume ${volume.name}`);
    if (volume.secret) need("Secret", volume.secret.secretName, `volume ${volume.name}`);
  }
  return problems;
}

/** The value a workload's containers get for an environment variable, through env or envFrom ConfigMaps. */
function environmentValue(pod, variable, byKindName) {
  for (const container of pod.containers ?? []) {
    const direct = (container.env ?? []).find((e) => e.name === variable);
    if (direct?.value !== undefined) return direct.value;
    for (const source of container.envFrom ?? []) {
      const configMap = source.configMapRef && byKindName.get(`ConfigMap/${source.configMapRef.name}`);
      if (configMap?.data?.[variable] !== undefined) return configMap.data[variable];
    }
  }
  return undefined;
}

// Seconds in a .NET TimeSpan setting ("00:01:40", "100" is not one): null when unset or unreadable.
function timeSpanSeconds(text) {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(text ?? "");
  return match ? Number(match[1] ?? 0) * 86400 + Number(match[2]) * 3600 + Number(match[3]) * 60 + Number(match[4]) : null;
}

// Graceful drain (src/ServiceDefaults/Draining.cs): after SIGTERM a service drains for Shutdown__DrainTimeout and then
// takes Shutdown__StopMargin (default 5 s) to end what remains; with the preStop pause before SIGTERM, that must fit in
// terminationGracePeriodSeconds, or the kubelet's SIGKILL cuts replies off without a status.
function drainProblems(pod, byKindName) {
  const drain = environmentValue(pod, "Shutdown__DrainTimeout", byKindName);
  if (drain === undefined) return ["Shutdown__DrainTimeout is not set: the drain time must be matched to terminationGracePeriodSeconds"];
  const drainSeconds = timeSpanSeconds(drain);
  const marginSeconds = timeSpanSeconds(environmentValue(pod, "Shutdown__StopMargin", byKindName) ?? "00:00:05");
  if (drainSeconds === null || marginSeconds === null) return [`Shutdown__DrainTimeout '${drain}' is not a TimeSpan (hh:mm:ss)`];
  const preStop = Math.max(0, ...(pod.containers ?? []).map((c) => c.lifecycle?.preStop?.sleep?.seconds ?? 0));
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  const needed = preStop + drainSeconds + marginSeconds;
  return needed > grace
    ? [`preStop ${preStop} s + drain ${drainSeconds} s + stop margin ${marginSeconds} s = ${needed} s exceeds terminationGracePeriodSeconds ${grace}`]
    : [];
}

// Who may open connections to whom: the gateway is the only entry point, and each tier is reached only from
// the tier in front of it — and DialogueService also from backend teams' namespaces, selected by one label (they
// authenticate like every caller). Workloads not listed here are not constrained by this rule.
const allowedCallers = new Map([
  ["dialogue-service", ["gateway"]],
  ["inference-service", ["dialogue-service"]],
]);
const allowedCallerNamespaces = new Map([["dialogue-service", { "chatservices.io/dialogue-client": "true" }]]);

// A peer that selects exactly the namespaces labelled as this workload's callers (and no pods of its own namespace).
function isCallerNamespacePeer(peer, workload) {
  const labels = allowedCallerNamespaces.get(workload.metadata?.name);
  const match = peer.namespaceSelector?.matchLabels;
  return Boolean(labels && match && !peer.podSelector && !peer.ipBlock && !peer.namespaceSelector.matchExpressions
    && JSON.stringify(Object.entries(match).sort()) === JSON.stringify(Object.entries(labels).sort()));
}

// The management port (container port named "management": HTTP/1.1 /metrics, /healthz, /readyz) is for scrapers
// such as Prometheus in another namespace, not for callers: a rule that opens that port and nothing else is exempt.
function opensOnlyManagementPort(rule, workload) {
  const management = new Set();
  for (const container of workload.spec?.template?.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (port.name === "management") management.add(port.name).add(port.containerPort);
    }
  }
  return management.size > 0 && (rule.ports?.length ?? 0) > 0 && rule.ports.every((p) => management.has(p.port));
}

function callerProblems(workload, policies, workloads) {
  const callers = allowedCallers.get(workload.metadata?.name);
  if (!callers) return [];
  const problems = [];
  for (const policy of policies) {
    for (const rule of policy.spec?.ingress ?? []) {
      if (opensOnlyManagementPort(rule, workload)) continue;
      if (!rule.from?.length) {
        problems.push(`NetworkPolicy/${policy.metadata?.name} admits every source; only ${callers.join(", ")} may call it`);
        continue;
      }
      for (const peer of rule.from) {
        if (isCallerNamespacePeer(peer, workload)) continue;
        const sources = workloads.filter((w) => peer.podSelector && selects(peer.podSelector.matchLabels, w.spec?.template?.metadata?.labels));
        const stranger = sources.find((w) => !callers.includes(w.metadata?.name));
        if (peer.ipBlock || peer.namespaceSelector || !peer.podSelector?.matchLabels || stranger) {
          problems.push(`NetworkPolicy/${policy.metadata?.name} admits ${stranger ? id(stranger) : "sources other than its pods"}; only ${callers.join(", ")} may call it`);
        }
      }
    }
  }
  return problems;
}

function projectProblems(objects, overlay) {
  const problems = [];
  const report = (object, message) => problems.push(`${id(object)}: ${message}`);
  const byKindName = new Map(objects.map((o) => [`${o.kind}/${o.metadata?.name}`, o]));
  const ofKind = (kind) => objects.filter((o) => o.kind === kind);
  const images = dockerfiles();
  const workloads = objects.filter((o) => workloadKinds.has(o.kind));
  const policies = ofKind("NetworkPolicy");

  if (workloads.length === 0) problems.push("no workloads (Deployment, StatefulSet, DaemonSet) in the manifests");
  if (policies.length === 0) problems.push("no NetworkPolicy in the manifests");
  const denyAll = policies.find(
    (p) => Object.keys(p.spec?.podSelector ?? {}).length === 0 && p.spec?.policyTypes?.includes("Ingress") && !p.spec?.ingress?.length,
  );
  if (policies.length > 0 && !denyAll) problems.push("no default-deny NetworkPolicy (empty podSelector, Ingress, no rules)");

  for (const workload of workloads) {
    const pod = workload.spec?.template?.spec ?? {};
    const labels = workload.spec?.template?.metadata?.labels ?? {};
    const tlsGrpc = environmentValue(pod, "Kestrel__Endpoints__Grpc__Url", byKindName)?.startsWith("https://") ?? false;
    for (const container of pod.containers ?? []) {
      for (const problem of containerProblems(container, pod, images, { tlsGrpc })) report(workload, problem);
    }
    for (const container of pod.initContainers ?? []) {
      for (const problem of containerProblems(container, pod, images, { init: true })) report(workload, problem);
    }
    for (const problem of referenceProblems(pod, byKindName)) report(workload, problem);
    for (const problem of drainProblems(pod, byKindName)) report(workload, problem);
    for (const problem of scrapeProblems(workload.spec?.template)) report(workload, problem);
    if (pod.automountServiceAccountToken !== false) report(workload, "automountServiceAccountToken is not false");

    const isolating = policies.filter(
      (p) => Object.keys(p.spec?.podSelector?.matchLabels ?? {}).length > 0 && selects(p.spec.podSelector.matchLabels, labels),
    );
    if (!isolating.some((p) => p.spec?.policyTypes?.includes("Ingress"))) {
      report(workload, "no NetworkPolicy of its own restricts its ingress");
    }
    for (const problem of callerProblems(workload, isolating, workloads)) report(workload, problem);
    if (!ofKind("PodDisruptionBudget").some((b) => selects(b.spec?.selector?.matchLabels, labels) && b.spec?.selector?.matchLabels)) {
      report(workload, "no PodDisruptionBudget selects its pods");
    }
    const scaled = [...ofKind("HorizontalPodAutoscaler"), ...ofKind("ScaledObject")].some(
      (s) => s.spec?.scaleTargetRef?.name === workload.metadata?.name && (s.spec.scaleTargetRef.kind ?? "Deployment") === workload.kind,
    );
    if (workload.kind === "Deployment" && !scaled) report(workload, "no HorizontalPodAutoscaler or ScaledObject scales it");
  }

  // Every Service reaches pods, on ports they declare.
  for (const service of ofKind("Service")) {
    const selector = service.spec?.selector;
    const targets = workloads.filter((w) => selector && selects(selector, w.spec?.template?.metadata?.labels));
    if (targets.length === 0) {
      report(service, "its selector matches no workload's pods");
      continue;
    }
    const ports = targets.flatMap((w) => (w.spec.template.spec.containers ?? []).flatMap((c) => c.ports ?? []));
    for (const port of service.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      if (!ports.some((p) => p.name === target || p.containerPort === target)) {
        report(service, `port ${port.name ?? port.port} targets ${target}, which no selected container declares`);
      }
    }
  }
  for (const policy of policies) {
    const selector = policy.spec?.podSelector?.matchLabels;
    if (selector && Object.keys(selector).length > 0 && !workloads.some((w) => selects(selector, w.spec?.template?.metadata?.labels))) {
      report(policy, "its podSelector matches no workload's pods");
    }
  }

  // Overlay-specific placement of InferenceService.
  const gpuLimits = workloads.filter((w) =>
    (w.spec?.template?.spec?.containers ?? []).some((c) => c.resources?.limits?.["nvidia.com/gpu"] !== undefined),
  );
  if (overlay === "gpu") {
    const inference = byKindName.get("Deployment/inference-service");
    if (!inference) problems.push("gpu overlay: no Deployment/inference-service");
    else {
      const pod = inference.spec.template.spec;
      if (!gpuLimits.includes(inference)) report(inference, "gpu overlay: no nvidia.com/gpu limit");
      if (!(pod.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu")) report(inference, "gpu overlay: no toleration for nvidia.com/gpu");
      if (Object.keys(pod.nodeSelector ?? {}).every((k) => !k.startsWith("nvidia.com/"))) {
        report(inference, "gpu overlay: no GPU node selector (nvidia.com/…)");
      }
      const provider = environmentValue(pod, "Inference__ExecutionProvider", byKindName);
      if (provider !== "cuda") report(inference, `gpu overlay: Inference__ExecutionProvider is ${provider ?? "unset"}, not cuda`);
    }
  }
  if (overlay === "cpu") {
    for (const workload of gpuLimits) report(workload, "cpu overlay: requests nvidia.com/gpu");
    const inference = byKindName.get("Deployment/inference-service");
    const provider = inference && environmentValue(inference.spec.template.spec, "Inference__ExecutionProvider", byKindName);
    if (inference && provider !== "cpu") report(inference, `cpu overlay: Inference__ExecutionProvider is ${provider ?? "unset"}, not cpu`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfiles (the images cannot be built where this runs; these are the mistakes a build or a pod would hit)

/** Top-level context paths that /.dockerignore leaves out (plain entries; glob patterns are not interpreted). */
function ignoredContextPaths() {
  const file = join(repoRoot, ".dockerignore");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .map((line) => line.trim().replace(/\/$/, ""))
    .filter((line) => line && !line.startsWith("#") && !line.startsWith("!") && !/[*?[]/.test(line));
}

export function dockerfileProblems(dockerfile) {
  const problems = [];
  const text = readFileSync(dockerfile, "utf8").replace(/\\\n/g, " ");
  const lines = text.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
  const args = new Map();
  const stages = new Set();
  let final = [];
  const ignored = ignoredContextPaths();
  const expand = (value) => value.replace(/\$\{?(\w+)\}?/g, (m, name) => args.get(name) ?? m);

  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const operands = rest.join(" ");
    switch (instruction.toUpperCase()) {
      case "ARG": {
        const [name, value] = operands.split("=");
        if (value !== undefined && !args.has(name)) args.set(name, value);
        break;
      }
      case "FROM": {
        const [image, , stage] = expand(operands).split(/\s+/);
        if (!stages.has(image)) {
          const tag = /:([^/:@]+)$/.exec(image)?.[1];
          if (!tag && !image.includes("@")) problems.push(`FROM ${image}: no tag`);
          if (tag === "latest") problems.push(`FROM ${image}: the tag "latest" is not reproducible`);
        }
        if (stage) stages.add(stage);
        final = [];
        break;
      }
      case "COPY":
      case "ADD": {
        const words = operands.split(/\s+/);
        if (words.some((w) => w.startsWith("--from="))) break;
        for (const source of words.filter((w) => !w.startsWith("--")).slice(0, -1)) {
          const path = source.replace(/^\.\/?/, "");
          if (path && !existsSync(join(repoRoot, path))) problems.push(`${instruction} ${source}: not in the build context (repository root)`);
          if (path && ignored.some((entry) => path === entry || path.startsWith(`${entry}/`))) {
            problems.push(`${instruction} ${source}: excluded from the build context by .dockerignore`);
          }
        }
        break;
      }
      case "RUN": {
        const publish = /dotnet publish (\S+\.csproj)/.exec(operands);
        if (publish && !existsSync(join(repoRoot, publish[1]))) problems.push(`dotnet publish ${publish[1]}: no such project`);
        if (publish) args.set("__published", publish[1]);
        break;
      }
    }
    final.push([instruction.toUpperCase(), operands]);
  }

  const user = final.filter(([i]) => i === "USER").at(-1)?.[1];
  if (!user) problems.push("the final stage sets no USER: the image would run as root");
  // runAsNonRoot can only be verified by the kubelet for a numeric user.
  else if (!/^(\d+|\$\{?APP_UID\}?)(:\d+)?$/.test(user) || /^0(:|$)/.test(user)) {
    problems.push(`USER ${user}: must be a numeric non-root UID (or $APP_UID) so that runAsNonRoot can be verified`);
  }
  if (!final.some(([i]) => i === "EXPOSE")) problems.push("the final stage EXPOSEs no port");
  const entrypoint = final.filter(([i]) => i === "ENTRYPOINT").at(-1)?.[1];
  if (!entrypoint?.startsWith("[")) problems.push("no exec-form ENTRYPOINT in the final stage (signals must reach the process)");
  const published = args.get("__published");
  if (entrypoint?.startsWith("[") && published) {
    const assembly = published.split("/").at(-1).replace(/\.csproj$/, ".dll");
    if (!entrypoint.includes(`"${assembly}"`)) problems.push(`ENTRYPOINT ${entrypoint} does not run ${assembly}, which the build publishes`);
  }
  const shown = relative(repoRoot, resolve(dockerfile));
  return problems.map((p) => `${shown.startsWith("..") ? dockerfile : shown}: ${p}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Input and command line

function parseManifests(text) {
  const objects = [];
  const problems = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      problems.push(...document.errors.map((e) => `YAML: ${e.message}`));
      continue;
    }
    const object = document.toJS();
    if (object === null || object === undefined) continue;
    if (object.kind === "List" && Array.isArray(object.items)) objects.push(...object.items);
    else objects.push(object);
  }
  return { objects, problems };
}

/** Every problem in one rendered manifest set, each prefixed with the source it came from. */
export async function validate(text, { overlay, schemaOnly = false, source = "input" } = {}) {
  const { objects, problems } = parseManifests(text);
  for (const object of objects) {
    for (const problem of await schemaProblems(object)) problems.push(`${id(object)}: ${problem}`);
  }
  if (objects.length === 0) problems.push("no Kubernetes objects in the input");
  if (!schemaOnly) problems.push(...projectProblems(objects, overlay));
  return { objects, problems: problems.map((p) => `${source}: ${p}`) };
}

function render(overlay) {
  return execFileSync("kubectl", ["kustomize", join(overlaysDir, overlay)], { encoding: "utf8", maxBuffer: 64 << 20 });
}

function summary(objects) {
  const counts = new Map();
  for (const o of objects) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
}

async function main(argv) {
  const usage = "usage: validate.mjs --all | --dockerfile FILE | [--overlay NAME] [--schema-only] FILE|-";
  let overlay;
  let dockerfile;
  let schemaOnly = false;
  let all = false;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--all") all = true;
    else if (arg === "--schema-only") schemaOnly = true;
    else if (arg === "--overlay") overlay = argv[++i];
    else if (arg === "--dockerfile") dockerfile = argv[++i];
    else if (arg === "-h" || arg === "--help") {
      console.log(usage);
      return 0;
    } else if (arg.startsWith("--") || files.length > 0) {
      console.error(usage);
      return 2;
    } else files.push(arg);
  }
  if (dockerfile) {
    if (all || files.length > 0 || overlay || schemaOnly) {
      console.error(usage);
      return 2;
    }
    const problems = dockerfileProblems(dockerfile);
    for (const problem of problems) console.error(problem);
    if (problems.length === 0) console.log(`${dockerfile}: valid`);
    return problems.length > 0 ? 1 : 0;
  }
  if (all === (files.length > 0) || (all && (overlay || schemaOnly))) {
    console.error(usage);
    return 2;
  }

  const inputs = all
    ? readdirSync(overlaysDir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => ({ overlay: entry.name, source: `overlays/${entry.name}`, text: () => render(entry.name) }))
    : [{ overlay, source: files[0] === "-" ? "stdin" : files[0], text: () => readFileSync(files[0] === "-" ? 0 : files[0], "utf8") }];

  let failed = false;
  for (const input of inputs) {
    let text;
    try {
      text = input.text();
    } catch (error) {
      failed = true;
      console.error(`${input.source}: cannot be read or rendered: ${error.stderr?.toString().trim() || error.message}`);
      continue;
    }
    const { objects, problems } = await validate(text, { overlay: input.overlay, schemaOnly, source: input.source });
    if (problems.length > 0) {
      failed = true;
      for (const problem of problems) console.error(problem);
    } else {
      console.log(`${input.source}: ${objects.length} objects valid (${summary(objects)})`);
    }
  }
  if (all) {
    for (const file of dockerfiles().values()) {
      const problems = dockerfileProblems(file);
      failed ||= problems.length > 0;
      for (const problem of problems) console.error(problem);
      if (problems.length === 0) console.log(`${relative(repoRoot, file)}: valid`);
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
