using System.Net;
using System.Text.Json;
using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Front ends against the whole system: the official OpenAI SDK and a person in a real browser, through the
/// Gateway, DialogueService and InferenceService.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class GatewayTests(ChatSystemFixture fixture)
{
    private ChatSystem System => fixture.System;

    [Fact]
    public async Task The_openai_SDK_chats_streams_and_completes_against_the_running_system()
    {
        var result = await NodeScript.RunAsync("tests/Gateway.Tests/Interop/openai-sdk.mjs", [System.Gateway.Address.ToString()], TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.Describe() + "\n" + System.Logs);

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("model", summary.GetProperty("model").GetString()); // the model folder's name
        Assert.False(string.IsNullOrEmpty(summary.GetProperty("reply").GetString()));
        Assert.True(summary.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
    }

    /// <summary>Refusals that DialogueService makes reach the HTTP caller naming the field as the caller sent it.</summary>
    [Fact]
    public async Task Errors_from_the_whole_system_name_the_field_the_caller_sent()
    {
        using var client = new HttpClient { BaseAddress = System.Gateway.Address };

        var token = await (await client.GetAsync("/api/conversations?page_token=not-a-token")).AssertErrorAsync(HttpStatusCode.BadRequest, "page_token");
        Assert.Equal("page_token: The page token is not valid; pass the token of the previous page unchanged.", token.GetProperty("message").GetString());

        var id = (await (await client.PostJsonAsync("/api/conversations", "{}")).JsonAsync()).GetProperty("id").GetString();
        var tooLong = await (await client.PostJsonAsync($"/api/conversations/{id}/messages", """{"content":"hi","max_tokens":100000}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "max_tokens");
        Assert.StartsWith("max_tokens: 100000 does not fit: the model's context length is 1024 tokens", tooLong.GetProperty("message").GetString());

        var nul = await (await client.PostJsonAsync($"/api/conversations/{id}/messages", """{"content":"a\u0000b"}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "content");
        Assert.Contains("U+0000", nul.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_person_chats_stops_and_regenerates_in_the_browser_against_the_running_system()
    {
        var screenshots = Path.Combine(RepositoryRoot.Path, "artifacts", "screenshots", "end-to-end");
        var result = await NodeScript.RunAsync("tests/Gateway.Tests/WebPage/chat-page.mjs",
            [System.Gateway.Address.ToString(), "--slow-prompt", "Tell me a very long story about the sea.", "--screenshots", screenshots],
            TimeSpan.FromSeconds(180));
        Assert.True(result.ExitCode == 0, result.Describe() + "\n" + System.Logs);

        var summary = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.False(string.IsNullOrEmpty(summary.GetProperty("reply").GetString()));
        Assert.True(summary.GetProperty("stoppedAt").GetInt32() > 0);

        // Stop in the page reached InferenceService: nothing is left running there.
        var info = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
        for (var i = 0; i < 50 && info.Running > 0; i++)
        {
            await Task.Delay(100);
            info = await System.InferenceClient.GetModelInfoAsync(new GetModelInfoRequest());
        }
        Assert.Equal(0u, info.Running);
    }
}
