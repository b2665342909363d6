namespace ChatServices.Deploy.Tests;

/// <summary>
/// deploy/validate.mjs --schema-only checks objects against the Kubernetes OpenAPI schema (and field names against
/// the type declarations) and nothing else. A known-good Deployment passes; each broken variant is rejected with
/// the path of what is wrong — so a green overlay really means a schema-valid one.
/// </summary>
public sealed class SchemaValidationTests
{
    private const string Deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: probe
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: probe
          template:
            metadata:
              labels:
                app: probe
            spec:
              containers:
                - name: probe
                  image: registry.example.com/probe:1
                  ports:
                    - containerPort: 50051
                  readinessProbe:
                    grpc:
                      port: 50051
                  resources:
                    limits:
                      cpu: 500m
        """;

    [Fact]
    public void Accepts_a_valid_deployment()
    {
        var result = DeployTools.Validate(Deployment, "--schema-only", "-");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("stdin: 1 objects valid (1 Deployment)", result.StandardOutput.Trim());
    }

    [Theory]
    [InlineData("replicas: 2", "replicas: \"two\"", "data/spec/replicas must be integer")]
    [InlineData("containerPort: 50051", "containerPort: \"50051\"", "data/spec/template/spec/containers/0/ports/0/containerPort must be integer")]
    [InlineData("cpu: 500m", "cpu: half", "data/spec/template/spec/containers/0/resources/limits/cpu must match format \"quantity\"")]
    [InlineData("      containers:", "      containerz:", "data/spec/template/spec must have required property containers")]
    [InlineData("readinessProbe:", "readinesProbe:", "unknown field /spec/template/spec/containers/0/readinesProbe")]
    [InlineData("    grpc:", "    grpcc:", "unknown field /spec/template/spec/containers/0/readinessProbe/grpcc")]
    [InlineData("kind: Deployment", "kind: Deploymnt", "unknown kind Deploymnt in apps/v1")]
    [InlineData("apiVersion: apps/v1", "apiVersion: extensions/v1beta1", "extensions/v1beta1 is a pre-release API version")]
    public void Rejects_a_deployment_that_breaks_the_schema(string valid, string broken, string expected)
    {
        Assert.Contains(valid, Deployment);
        var manifest = Deployment.Replace(valid, broken, StringComparison.Ordinal);

        var result = DeployTools.Validate(manifest, "--schema-only", "-");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(expected, result.StandardError);
        Assert.Empty(result.StandardOutput);
    }

    [Fact]
    public void Rejects_a_scaled_object_with_a_numeric_threshold()
    {
        // KEDA's trigger metadata is a map of strings: an unquoted number is a classic mistake.
        const string scaledObject = """
            apiVersion: keda.sh/v1alpha1
            kind: ScaledObject
            metadata:
              name: inference-service
            spec:
              scaleTargetRef:
                name: inference-service
              triggers:
                - type: prometheus
                  metadata:
                    serverAddress: http://prometheus:9090
                    query: sum(queue)
                    threshold: 4
            """;

        var broken = DeployTools.Validate(scaledObject, "--schema-only", "-");
        var fixedUp = DeployTools.Validate(scaledObject.Replace("threshold: 4", "threshold: \"4\"", StringComparison.Ordinal), "--schema-only", "-");

        Assert.Equal(1, broken.ExitCode);
        Assert.Contains("data/spec/triggers/0/metadata/threshold must be string", broken.StandardError);
        Assert.True(fixedUp.ExitCode == 0, fixedUp.ToString());
    }

    [Fact]
    public void Rejects_input_that_is_not_yaml_or_holds_no_objects()
    {
        var notYaml = DeployTools.Validate("kind: [unclosed", "--schema-only", "-");
        var empty = DeployTools.Validate("# nothing\n", "--schema-only", "-");

        Assert.Equal(1, notYaml.ExitCode);
        Assert.Contains("YAML:", notYaml.StandardError);
        Assert.Equal(1, empty.ExitCode);
        Assert.Contains("no Kubernetes objects in the input", empty.StandardError);
    }
}
