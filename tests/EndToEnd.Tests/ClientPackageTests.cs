using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;
using ChatServices.DialogueService.Tests;
using ChatServices.EndToEnd.Tests.Infrastructure;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// ChatServices.Client as a NuGet user gets it: <c>dotnet pack</c> makes the ChatServices.Client and
/// ChatServices.Contracts packages, a project outside the repository that references only the package (from a local
/// folder feed) builds samples/ChatConsole's Program.cs, and that program chats with the running system.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class ClientPackageTests(ChatSystemFixture fixture) : IDisposable
{
    private static readonly string Configuration =
        typeof(ClientPackageTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    // A version of this run only, so that NuGet's package cache never serves an older build of the same version.
    private readonly string _version = $"0.0.0-test.{Guid.NewGuid():N}";
    private readonly string _directory = Directory.CreateTempSubdirectory("chatservices-package-").FullName;

    [Fact]
    public async Task The_packed_library_builds_the_sample_outside_the_repository_and_it_chats_with_the_system()
    {
        var feed = Path.Combine(_directory, "feed");
        foreach (var project in new[] { "src/Contracts", "src/ChatServices.Client" })
            await RunAsync("dotnet", TestPaths.RepoRoot, null, "pack", project, "--no-build", "-c", Configuration, "-o", feed, $"-p:Version={_version}",
                $"-p:NuspecOutputPath={Path.Combine(_directory, "nuspec")}/", "-nologo"); // nothing of the run left in obj/

        using (var package = ZipFile.OpenRead(Path.Combine(feed, $"ChatServices.Client.{_version}.nupkg")))
        {
            var files = package.Entries.Select(e => e.FullName).ToArray();
            Assert.Contains("lib/net10.0/ChatServices.Client.dll", files);
            Assert.Contains("lib/net10.0/ChatServices.Client.xml", files);
            Assert.Contains("README.md", files);
            await using var nuspec = package.GetEntry("ChatServices.Client.nuspec")!.Open();
            var dependencies = XDocument.Load(nuspec).Descendants().Where(e => e.Name.LocalName == "dependency")
                .ToDictionary(e => (string)e.Attribute("id")!, e => (string)e.Attribute("version")!);
            Assert.Equal(_version, dependencies["ChatServices.Contracts"]);
            Assert.Contains("Microsoft.Extensions.AI", dependencies.Keys);
        }

        var consumer = Path.Combine(_directory, "consumer");
        Directory.CreateDirectory(consumer);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "samples", "ChatConsole", "Program.cs"), Path.Combine(consumer, "Program.cs"));
        await File.WriteAllTextAsync(Path.Combine(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ChatServices.Client" Version="{_version}" />
              </ItemGroup>
            </Project>
            """);
        await RunAsync("dotnet", consumer, null, "build", "-nologo", "-o", "out", $"-p:RestoreAdditionalProjectSources={feed}");

        var chat = await RunAsync("dotnet", consumer, "Hello!\n\n", Path.Combine(consumer, "out", "Consumer.dll"), fixture.System.Dialogue.Address.ToString());

        Assert.StartsWith($"Chatting with {fixture.System.Dialogue.Address}", chat);
        var reply = chat.Split('\n')[1].TrimStart('>', ' ');
        Assert.False(string.IsNullOrWhiteSpace(reply), chat);
    }

    /// <summary>Runs a program to its end (at most two minutes) and returns its output; a non-zero exit fails the test with the output.</summary>
    private static async Task<string> RunAsync(string program, string directory, string? input, params string[] arguments)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = directory, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(input ?? "");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}\n{await output}\n{await error}");
        return await output;
    }

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
        // The run's packages in NuGet's global cache: nothing else will ever ask for this version.
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { "chatservices.client", "chatservices.contracts" })
        {
            try { Directory.Delete(Path.Combine(cache, id, _version.ToLowerInvariant()), recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }
}
