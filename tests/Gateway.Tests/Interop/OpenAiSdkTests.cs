using System.Text.Json;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.Interop;

/// <summary>The official <c>openai</c> npm SDK, unchanged, against the running gateway (Interop/openai-sdk.mjs).</summary>
[Collection(GatewayCollection.Name)]
public sealed class OpenAiSdkTests(GatewayFixture fixture)
{
    private const string Script = "tests/Gateway.Tests/Interop/openai-sdk.mjs";

    [Fact]
    public async Task The_openai_SDK_lists_models_completes_streams_and_gets_typed_errors()
    {
        var result = await NodeScript.RunAsync(Script,
            [fixture.BaseAddress.ToString(), "--api-key", GatewayFixture.AliceKey, "--expect-reply-prefix", "Hello! You said: ", "--check-auth"],
            TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.Describe());

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal(ScriptedDialogueService.ModelId, summary.GetProperty("model").GetString());
        Assert.Equal("Hello! You said: Say hello to the SDK.", summary.GetProperty("reply").GetString());
        Assert.Equal("Hello! You said: Say hello to the SDK.", summary.GetProperty("streamed").GetString());
        Assert.Equal(8, summary.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(8, summary.GetProperty("streamUsage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, summary.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal("Hello! You said: Once upon a time", summary.GetProperty("legacy").GetString());
        // Role chunk, eight deltas, finish chunk, usage chunk.
        Assert.Equal(11, summary.GetProperty("chunks").GetInt32());

        var sdkRequest = fixture.Upstream.ChatRequests.Last(r => r.OwnerId == "alice" && r.Messages.Count == 2 && r.Messages[1].Content == "Say hello to the SDK.");
        Assert.Equal(32, sdkRequest.Settings.MaxTokens);
        Assert.Equal(0f, sdkRequest.Settings.Temperature);
    }

    [Fact]
    public async Task The_openai_SDK_works_without_a_real_key_on_an_anonymous_loopback_gateway()
    {
        var result = await NodeScript.RunAsync(Script, [fixture.AnonymousBaseAddress.ToString()], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.Describe());
    }
}
