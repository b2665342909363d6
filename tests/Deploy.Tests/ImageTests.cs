using System.Text.RegularExpressions;

namespace ChatServices.Deploy.Tests;

/// <summary>
/// The images cannot be built where the tests run (no container runtime), so what can go wrong before a build is
/// checked statically: the Dockerfiles (tags, context paths, non-root numeric USER, entry point), and that the
/// overlays deploy exactly the images deploy/build-images.sh builds.
/// </summary>
public sealed partial class ImageTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("deploy-tests-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public void Every_image_the_overlays_deploy_is_built_by_the_build_script_with_the_same_name()
    {
        var build = DeployTools.Run("bash", ["deploy/build-images.sh", "--dry-run"]);
        Assert.True(build.ExitCode == 0, build.ToString());
        var built = TagPattern().Matches(build.StandardOutput).Select(m => m.Groups[1].Value).ToHashSet();

        var deployed = new[] { "cpu", "gpu" }
            .SelectMany(overlay => ImagePattern().Matches(DeployTools.Render(overlay)).Select(m => m.Groups[1].Value))
            .ToHashSet();

        Assert.Equal(4, built.Count);
        Assert.Subset(built, deployed);
        Assert.Contains("registry.example.com/chatservices/inference-service-gpu:0.1.0", deployed);
        Assert.Contains("registry.example.com/chatservices/inference-service:0.1.0", deployed);
    }

    [Fact]
    public void Rejects_a_dockerfile_that_would_run_as_root_or_not_build_from_the_context()
    {
        var dockerfile = Path.Combine(_scratch, "broken.Dockerfile");
        File.WriteAllText(dockerfile, """
            FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
            COPY node_modules ./node_modules
            COPY src/NoSuchService ./src
            RUN dotnet publish src/NoSuchService/NoSuchService.csproj -c Release -o /app
            FROM mcr.microsoft.com/dotnet/aspnet:latest
            COPY --from=build /app ./
            USER app
            ENTRYPOINT dotnet NoSuchService.dll
            """);

        var result = DeployTools.Validate(null, "--dockerfile", dockerfile);

        Assert.Equal(1, result.ExitCode);
        string[] expected =
        [
            "COPY node_modules: excluded from the build context by .dockerignore",
            "COPY src/NoSuchService: not in the build context (repository root)",
            "dotnet publish src/NoSuchService/NoSuchService.csproj: no such project",
            "FROM mcr.microsoft.com/dotnet/aspnet:latest: the tag \"latest\" is not reproducible",
            "USER app: must be a numeric non-root UID (or $APP_UID) so that runAsNonRoot can be verified",
            "the final stage EXPOSEs no port",
            "no exec-form ENTRYPOINT in the final stage (signals must reach the process)",
        ];
        Assert.Equal(expected.Select(problem => $"{dockerfile}: {problem}").Order(),
            result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    }

    [Fact]
    public void Rejects_a_dockerfile_whose_entry_point_is_not_the_published_assembly()
    {
        var dockerfile = Path.Combine(_scratch, "mismatch.Dockerfile");
        var gateway = File.ReadAllText(Path.Combine(DeployTools.RepoRoot, "deploy", "docker", "gateway.Dockerfile"));
        Assert.Contains("""ENTRYPOINT ["dotnet", "Gateway.dll"]""", gateway);
        File.WriteAllText(dockerfile, gateway.Replace("\"Gateway.dll\"", "\"Edge.dll\"", StringComparison.Ordinal));

        var result = DeployTools.Validate(null, "--dockerfile", dockerfile);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"""{dockerfile}: ENTRYPOINT ["dotnet", "Edge.dll"] does not run Gateway.dll, which the build publishes""", result.StandardError.Trim());
    }

    [GeneratedRegex(@"--tag (\S+)")]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^\s+image: (\S+)$", RegexOptions.Multiline)]
    private static partial Regex ImagePattern();
}
