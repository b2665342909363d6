using System.Diagnostics;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>The ModelBuilder command line: builds folders with progress output, and fails with a one-line error and exit code 2.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public void Random_build_writes_the_folder_and_reports_progress()
    {
        using var folder = new TempFolder();
        var (code, stdout, _) = Run("--random", "--layers", "1", "--hidden-size", "32", "--heads", "2", "--kv-heads", "1",
            "--int4", "--precision", "Float16", "--output", folder.Path);
        Assert.Equal(0, code);
        Assert.Contains("layer 1/1 written", stdout);
        Assert.Contains("done:", stdout);
        foreach (var file in new[] { "model.onnx", "genai_config.json", "config.json" })
            Assert.True(File.Exists(Path.Combine(folder.Path, file)), file);
    }

    [Theory]
    [InlineData(false, 1L)]
    [InlineData(true, -1L)]
    public void Logits_are_each_rows_last_token_unless_every_position_is_asked_for(bool allPositions, long sequenceDimension)
    {
        using var folder = new TempFolder();
        string[] args = ["--random", "--layers", "1", "--hidden-size", "32", "--heads", "2", "--kv-heads", "1", "--output", folder.Path];
        var (code, _, stderr) = Run(allPositions ? [.. args, "--all-position-logits"] : args);
        Assert.True(code == 0, stderr);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(folder.ModelPath);
        var dims = session.OutputMetadata["logits"].Dimensions;
        Assert.Equal(3, dims.Length);
        Assert.Equal(sequenceDimension, dims[1]); // -1: symbolic (sequence_length)
    }

    [Fact]
    public void Missing_checkpoint_fails_with_a_clear_error()
    {
        using var folder = new TempFolder();
        var (code, _, stderr) = Run("--checkpoint", Path.Combine(folder.Path, "nowhere"), "--output", Path.Combine(folder.Path, "out"));
        Assert.Equal(2, code);
        Assert.StartsWith("error: config.json not found", stderr);
    }

    [Fact]
    public void Checkpoint_and_random_together_are_refused()
    {
        using var folder = new TempFolder();
        var (code, _, stderr) = Run("--random", "--checkpoint", folder.Path, "--output", folder.Path);
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --checkpoint DIR or --random", stderr);
    }

    [Fact]
    public void Bench_preset_is_about_25_million_parameters()
    {
        var config = RandomModelSpec.Preset("bench-25m").ToConfig();
        Assert.InRange(config.ParameterCount, 23_000_000, 27_000_000);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ModelBuilder.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) { process.Kill(); throw new TimeoutException("ModelBuilder did not finish"); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
