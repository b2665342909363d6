using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>The result of rendering one case: the prompt, or the error message when the template failed.</summary>
internal sealed record RenderOutcome(string? Output, string? Error)
{
    public override string ToString() => Error is null ? $"output {Quote(Output!)}" : $"error \"{Error}\"";

    private static readonly System.Text.Json.JsonSerializerOptions Readable =
        new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Quote(string s) => JsonValue.Create(s).ToJsonString(Readable);
}

/// <summary>
/// Runs reference-render.mjs (npm @huggingface/jinja) once for a template and all its cases, so the
/// tests compare against the renderer transformers.js uses rather than against expectations written by hand.
/// </summary>
internal static class ReferenceRenderer
{
    public static string ScriptPath => Path.Combine(TestPaths.RepoRoot, "tests", "DialogueService.Tests", "Templates", "reference-render.mjs");

    /// <summary>Renders one template over many cases.</summary>
    public static List<RenderOutcome> Render(string template, IReadOnlyList<JsonObject> cases) => Run(new JsonObject
    {
        ["template"] = template,
        ["cases"] = new JsonArray(cases.Select(c => (JsonNode)c.DeepClone()).ToArray()),
    });

    /// <summary>Renders many templates, each with its own variables.</summary>
    public static List<RenderOutcome> RenderEach(IReadOnlyList<(string Template, JsonObject Variables)> items) => Run(new JsonObject
    {
        ["batch"] = new JsonArray(items.Select(i => (JsonNode)new JsonObject { ["template"] = i.Template, ["variables"] = i.Variables.DeepClone() }).ToArray()),
    });

    private static List<RenderOutcome> Run(JsonObject request)
    {
        var start = new ProcessStartInfo("node", [ScriptPath])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = TestPaths.RepoRoot,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(request.ToJsonString());
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("reference renderer did not finish within 60 s");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"reference renderer failed ({process.ExitCode}): {stderr.Result}");
        var results = JsonNode.Parse(stdout.Result)!.AsArray();
        return results.Select(r => new RenderOutcome(r!["output"]?.GetValue<string>(), r["error"]?.GetValue<string>())).ToList();
    }
}
