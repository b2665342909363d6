using System.Diagnostics;
using ChatServices.Client.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ChatServices.Client.Tests;

/// <summary><c>AddChatServicesClient</c>: the IChatClient with Microsoft.Extensions.AI middleware, and bad settings refused.</summary>
public sealed class DependencyInjectionTests : RecordingServerTests
{
    [Fact]
    public async Task The_chat_client_composes_with_function_invocation_and_opentelemetry_middleware()
    {
        var source = "chatservices-client-test-" + Guid.NewGuid();
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == source,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);
        var services = new ServiceCollection();
        services.AddChatServicesClient(o => o.Address = Server.Address)
            .UseFunctionInvocation()
            .UseOpenTelemetry(sourceName: source);
        await using var provider = services.BuildServiceProvider();
        var chat = provider.GetRequiredService<IChatClient>();

        var response = await chat.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { MaxOutputTokens = 10 });

        Assert.Equal("Hello world", response.Text);
        Assert.NotNull(chat.GetService<FunctionInvokingChatClient>());
        Assert.NotNull(chat.GetService<ChatServicesChatClient>());
        var span = Assert.Single(spans, s => s.DisplayName.StartsWith("chat", StringComparison.Ordinal)); // beside orchestrate_tools
        Assert.Equal(ChatServicesChatClient.ProviderName, span.GetTagItem("gen_ai.provider.name"));
        Assert.Equal(7, Convert.ToInt32(span.GetTagItem("gen_ai.usage.input_tokens")) + Convert.ToInt32(span.GetTagItem("gen_ai.usage.output_tokens")));
    }

    [Fact]
    public async Task Without_an_address_resolving_the_client_fails_with_a_clear_message()
    {
        var services = new ServiceCollection();
        services.AddChatServicesClient(o => o.ApiKey = "csk_x");
        await using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IChatClient>());

        Assert.Contains("Address is required", error.Message);
    }
}
