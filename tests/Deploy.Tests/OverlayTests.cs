namespace ChatServices.Deploy.Tests;

/// <summary>
/// Every overlay renders with kustomize and passes deploy/validate.mjs: the Kubernetes OpenAPI schema for every
/// object, then the project's rules. The negative cases break one thing in a real rendering and expect the
/// validator to name it, proving each rule is actually enforced.
/// </summary>
public sealed class OverlayTests
{
    private static readonly string[] OverlayNames = Directory
        .GetDirectories(Path.Combine(DeployTools.RepoRoot, "deploy", "k8s", "overlays"))
        .Select(Path.GetFileName).OfType<string>().Order().ToArray();

    public static TheoryData<string> Overlays => new(OverlayNames);

    [Fact]
    public void Both_the_cpu_and_the_gpu_overlay_exist()
    {
        Assert.Equal(["cpu", "gpu"], OverlayNames);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Overlay_renders_and_every_object_passes_the_schema_and_project_rules(string overlay)
    {
        var manifests = DeployTools.Render(overlay);

        var result = DeployTools.Validate(manifests, "--overlay", overlay, "-");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("3 Deployment", result.StandardOutput);
        Assert.Contains("5 NetworkPolicy", result.StandardOutput);
        Assert.Contains("1 ScaledObject", result.StandardOutput);
        Assert.Contains("2 HorizontalPodAutoscaler", result.StandardOutput);
        Assert.Contains("3 PodDisruptionBudget", result.StandardOutput);
    }

    [Fact]
    public void The_ci_entry_point_checks_every_overlay_and_every_dockerfile()
    {
        var result = DeployTools.Validate(null, "--all");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"(?m)^overlays/cpu: \d+ objects valid", result.StandardOutput);
        Assert.Matches(@"(?m)^overlays/gpu: \d+ objects valid", result.StandardOutput);
        Assert.Contains("deploy/docker/inference-service-gpu.Dockerfile: valid", result.StandardOutput);
    }

    [Fact]
    public void Gpu_overlay_is_not_a_valid_cpu_deployment_and_vice_versa()
    {
        var gpuAsCpu = DeployTools.Validate(DeployTools.Render("gpu"), "--overlay", "cpu", "-");
        var cpuAsGpu = DeployTools.Validate(DeployTools.Render("cpu"), "--overlay", "gpu", "-");

        Assert.Equal(1, gpuAsCpu.ExitCode);
        Assert.Contains("Deployment/inference-service: cpu overlay: requests nvidia.com/gpu", gpuAsCpu.StandardError);
        Assert.Contains("Inference__ExecutionProvider is cuda, not cpu", gpuAsCpu.StandardError);
        Assert.Equal(1, cpuAsGpu.ExitCode);
        Assert.Contains("Deployment/inference-service: gpu overlay: no nvidia.com/gpu limit", cpuAsGpu.StandardError);
        Assert.Contains("gpu overlay: no toleration for nvidia.com/gpu", cpuAsGpu.StandardError);
        Assert.Contains("Inference__ExecutionProvider is cpu, not cuda", cpuAsGpu.StandardError);
    }

    [Fact]
    public void Rejects_gpu_overlay_whose_inference_pods_do_not_ask_for_a_gpu()
    {
        var problems = ProblemsWith("gpu", "nvidia.com/gpu: \"1\"", "ephemeral-storage: 1Gi");

        Assert.Equal(["stdin: Deployment/inference-service: gpu overlay: no nvidia.com/gpu limit"], problems);
    }

    [Fact]
    public void Rejects_a_drain_time_the_termination_grace_period_cannot_hold()
    {
        // Every service's drain, 100 s, becomes 115 s: with the preStop pause and the stop margin, past the 120 s grace.
        var problems = ProblemsWith("cpu", "Shutdown__DrainTimeout: \"00:01:40\"", "Shutdown__DrainTimeout: \"00:01:55\"");

        Assert.Equal(
            [
                "stdin: Deployment/dialogue-service: preStop 5 s + drain 115 s + stop margin 5 s = 125 s exceeds terminationGracePeriodSeconds 120",
                "stdin: Deployment/gateway: preStop 5 s + drain 115 s + stop margin 5 s = 125 s exceeds terminationGracePeriodSeconds 120",
                "stdin: Deployment/inference-service: preStop 10 s + drain 115 s + stop margin 5 s = 130 s exceeds terminationGracePeriodSeconds 120",
            ],
            problems.Order());
    }

    [Fact]
    public void Rejects_a_deployment_without_resources_security_context_probes_or_isolation()
    {
        const string bare = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: bare
            spec:
              selector:
                matchLabels:
                  app.kubernetes.io/name: bare
              template:
                metadata:
                  labels:
                    app.kubernetes.io/name: bare
                spec:
                  containers:
                    - name: bare
                      image: registry.example.com/chatservices/gateway:0.1.0
            """;
        var manifests = DeployTools.Render("cpu") + "\n---\n" + bare;

        var result = DeployTools.Validate(manifests, "--overlay", "cpu", "-");

        Assert.Equal(1, result.ExitCode);
        string[] expected =
        [
            "container bare: no cpu requests", "container bare: no memory requests",
            "container bare: no cpu limits", "container bare: no memory limits",
            "container bare: runAsNonRoot is not true (container or pod securityContext)", "container bare: readOnlyRootFilesystem is not true",
            "container bare: allowPrivilegeEscalation is not false", "container bare: capabilities do not drop ALL",
            "container bare: no RuntimeDefault or Localhost seccompProfile",
            "container bare: no startupProbe", "container bare: no livenessProbe", "container bare: no readinessProbe",
            "automountServiceAccountToken is not false", "no NetworkPolicy of its own restricts its ingress",
            "no PodDisruptionBudget selects its pods", "no HorizontalPodAutoscaler or ScaledObject scales it",
            "Shutdown__DrainTimeout is not set: the drain time must be matched to terminationGracePeriodSeconds",
        ];
        Assert.Equal(expected.Select(problem => $"stdin: Deployment/bare: {problem}").Order(), ErrorLines(result).Order());
    }

    [Fact]
    public void Rejects_manifests_without_network_policies()
    {
        var manifests = DeployTools.WithoutDocuments(DeployTools.Render("cpu"), "kind: NetworkPolicy");

        var result = DeployTools.Validate(manifests, "--overlay", "cpu", "-");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("stdin: no NetworkPolicy in the manifests", result.StandardError);
        Assert.Contains("stdin: Deployment/inference-service: no NetworkPolicy of its own restricts its ingress", result.StandardError);
    }

    [Theory]
    [InlineData("app.kubernetes.io/name: gateway", "Deployment/gateway")]
    [InlineData("app.kubernetes.io/part-of: chatservices", "Deployment/gateway")]
    public void Rejects_inference_reachable_from_anything_but_dialogue(string caller, string admitted)
    {
        const string policy = """
              ingress:
              - from:
                - podSelector:
                    matchLabels:
                      app.kubernetes.io/name: dialogue-service
                ports:
                - port: 50052
            """;
        var problems = ProblemsWith("cpu", policy, policy.Replace("app.kubernetes.io/name: dialogue-service", caller, StringComparison.Ordinal));

        Assert.Contains($"stdin: Deployment/inference-service: NetworkPolicy/inference-service admits {admitted}; only dialogue-service may call it", problems);
    }

    [Fact]
    public void The_tls_component_serves_gRPC_over_TLS_with_readiness_on_the_management_port_and_validates()
    {
        var manifests = DeployTools.Render("examples/cpu-tls");
        var result = DeployTools.Validate(manifests, "--overlay", "cpu", "-");

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("Kestrel__Endpoints__Grpc__Url: https://0.0.0.0:50052", manifests);
        Assert.Contains("Kestrel__Endpoints__Grpc__ClientCertificateMode: RequireCertificate", manifests);
        Assert.Contains("Dialogue__Inference__Endpoints__0: https://inference-service:50052", manifests);
        Assert.Contains("secretName: inference-service-tls", manifests);

        // Without the probe change, a TLS gRPC port would be probed in cleartext: the validator says so.
        var grpcProbe = DeployTools.Render("cpu");
        var tlsWithGrpcProbe = DeployTools.Validate(grpcProbe.Replace("Kestrel__Endpoints__Grpc__Url: http://0.0.0.0:50052",
            "Kestrel__Endpoints__Grpc__Url: https://0.0.0.0:50052", StringComparison.Ordinal), "--overlay", "cpu", "-");
        Assert.Contains("stdin: Deployment/inference-service: container inference-service: gRPC port 50052 serves TLS but readiness is not GET /readyz on the management port",
            ErrorLines(tlsWithGrpcProbe));
    }

    [Fact]
    public void Admits_backend_teams_to_dialogue_only_from_namespaces_with_the_documented_label()
    {
        // The rendered policy admits the labelled namespaces (the overlays validate); any other label is refused.
        var problems = ProblemsWith("cpu", "chatservices.io/dialogue-client: \"true\"", "team: \"anything\"");

        Assert.Equal(["stdin: Deployment/dialogue-service: NetworkPolicy/dialogue-service admits sources other than its pods; only gateway may call it"], problems);
    }

    [Fact]
    public void Rejects_dialogue_reachable_from_every_source()
    {
        const string rule = """
              ingress:
              - from:
                - podSelector:
                    matchLabels:
                      app.kubernetes.io/name: gateway
                ports:
                - port: 50051
            """;
        var problems = ProblemsWith("cpu", rule, "  ingress:\n  - ports:\n    - port: 50051\n");

        Assert.Equal(["stdin: Deployment/dialogue-service: NetworkPolicy/dialogue-service admits every source; only gateway may call it"], problems);
    }

    [Fact]
    public void Rejects_a_reference_to_a_config_map_that_is_not_rendered()
    {
        var manifests = DeployTools.WithoutDocuments(DeployTools.Render("cpu"), "kind: ConfigMap", "name: gateway-config-");

        var result = DeployTools.Validate(manifests, "--overlay", "cpu", "-");

        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"stdin: Deployment/gateway: container gateway envFrom refers to ConfigMap/gateway-config-\w+, which is not in the manifests", result.StandardError);
    }

    [Fact]
    public void Rejects_an_image_that_no_dockerfile_builds()
    {
        var problems = ProblemsWith("cpu", "chatservices/gateway:0.1.0", "chatservices/edge:0.1.0");

        Assert.Equal(
            ["stdin: Deployment/gateway: container gateway: image registry.example.com/chatservices/edge:0.1.0 has no Dockerfile (expected deploy/docker/edge.Dockerfile)"],
            problems);
    }

    [Fact]
    public void Rejects_a_service_whose_target_port_no_container_declares()
    {
        var problems = ProblemsWith("cpu", "port: 50052\n    protocol: TCP\n    targetPort: grpc", "port: 50052\n    protocol: TCP\n    targetPort: rpc");

        Assert.Equal(["stdin: Service/inference-service: port grpc targets rpc, which no selected container declares"], problems);
    }

    /// <summary>
    /// Validates the overlay's rendering with <paramref name="original"/> (which must be in it) replaced, expects the
    /// validator to fail, and returns its problem lines.
    /// </summary>
    [Fact]
    public void Prometheus_may_reach_the_management_port_but_not_the_grpc_port()
    {
        var problems = ProblemsWith("cpu", "- port: 9052", "- port: 50052");

        Assert.Equal(["stdin: Deployment/inference-service: NetworkPolicy/inference-service admits sources other than its pods; only dialogue-service may call it"], problems);
    }

    [Fact]
    public void Rejects_a_scrape_annotation_on_a_port_the_pod_does_not_declare()
    {
        var problems = ProblemsWith("gpu", "prometheus.io/port: \"9052\"", "prometheus.io/port: \"8081\"");

        Assert.Equal(["stdin: Deployment/inference-service: prometheus.io/port 8081 is not a declared container port"], problems);
    }

    private static string[] ProblemsWith(string overlay, string original, string replacement)
    {
        var rendered = DeployTools.Render(overlay);
        Assert.Contains(original, rendered);

        var result = DeployTools.Validate(rendered.Replace(original, replacement, StringComparison.Ordinal), "--overlay", overlay, "-");

        Assert.Equal(1, result.ExitCode);
        return ErrorLines(result);
    }

    private static string[] ErrorLines(ToolResult result) =>
        result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
