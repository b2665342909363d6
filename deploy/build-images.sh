#!/usr/bin/env bash
# Builds the ChatServices images, one per deploy/docker/<name>.Dockerfile, tagged <registry>/<name>:<tag>: the
# names the kustomize overlays deploy (`images:` in deploy/k8s/overlays/*/kustomization.yaml). The build context
# is the repository root. Needs Docker with BuildKit (the default builder since Docker 23).
#
#   deploy/build-images.sh [--registry R] [--tag T] [--push] [--dry-run] [name...]
#
#   --registry   image prefix (default: registry.example.com/chatservices, as in the overlays)
#   --tag        image tag (default: 0.1.0, as in the overlays)
#   --push       push each image after building it
#   --dry-run    print the commands instead of running them
#   name...      only these images (gateway, dialogue-service, inference-service, inference-service-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

registry=registry.example.com/chatservices
tag=0.1.0
push=false
dry_run=false
names=()
while (($#)); do
  case $1 in
    --registry) registry=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --push) push=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for dockerfile in deploy/docker/*.Dockerfile; do names+=("$(basename "$dockerfile" .Dockerfile)"); done
fi

run() { if $dry_run; then echo "$*"; else "$@"; fi; }

for name in "${names[@]}"; do
  dockerfile=deploy/docker/$name.Dockerfile
  [[ -f $dockerfile ]] || { echo "no $dockerfile" >&2; exit 2; }
  image=$registry/$name:$tag
  run docker build --file "$dockerfile" --tag "$image" .
  if $push; then run docker push "$image"; fi
done
