#!/usr/bin/env bash
# Keeps the CUDA build from going stale where no GPU is: builds InferenceService the way the CUDA image does
# (-p:OnnxRuntimeExecutionProvider=cuda, NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux), into artifacts/cuda-build so
# that the default (CPU) build outputs are untouched, then checks that
#   - the output has libonnxruntime_providers_cuda.so beside libonnxruntime.so, where ONNX Runtime looks for it;
#   - the provider links the CUDA major version that deploy/docker/inference-service-gpu.Dockerfile's base image
#     (ARG CUDA_IMAGE) provides;
#   - the managed API in the output loads, binds that native library (same version) and lists CUDAExecutionProvider.
# Run by ./test.sh. Costs about a minute on 2 cores once the ~270 MB package is in ~/.nuget/packages.
set -euo pipefail
cd "$(dirname "$0")/.."

artifacts=artifacts/cuda-build
log() { printf '[cuda-build] %s\n' "$*"; }

log "dotnet build src/InferenceService -p:OnnxRuntimeExecutionProvider=cuda"
dotnet build src/InferenceService/InferenceService.csproj -c Release -p:OnnxRuntimeExecutionProvider=cuda \
  --artifacts-path "$artifacts" -nologo -v quiet -clp:ErrorsOnly

output=$artifacts/bin/InferenceService/release
native=$output/runtimes/linux-x64/native
for lib in libonnxruntime.so libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  [[ -f $native/$lib ]] || { log "FAILED: $native/$lib is missing"; exit 1; }
done

# The CUDA runtime the provider links (DT_NEEDED libcudart.so.N) against the base image's CUDA version.
linked=$(grep -ao 'libcudart\.so\.[0-9]*' "$native/libonnxruntime_providers_cuda.so" | head -n1 | sed 's/.*\.so\.//')
image=$(sed -n 's|^ARG CUDA_IMAGE=nvidia/cuda:\([0-9]*\)\..*|\1|p' deploy/docker/inference-service-gpu.Dockerfile)
log "libonnxruntime_providers_cuda.so links CUDA ${linked:-?}; the GPU image's base is CUDA ${image:-?}"
[[ -n $linked && $linked == "$image" ]] || { log "FAILED: CUDA major of the provider and of the image differ"; exit 1; }

log "loading the managed API from $output"
LD_LIBRARY_PATH=$native dotnet run scripts/cuda-build/OrtProbe.cs -- "$output" CUDAExecutionProvider
log "ok"
