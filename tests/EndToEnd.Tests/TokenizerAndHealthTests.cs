using ChatServices.EndToEnd.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Net.Client;
using ChatServices.Protos.Chat.V1;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// The Tokenizer service, health and reflection of the running services, as a backend team's generated client
/// sees them.
/// </summary>
[Collection(ChatSystemCollection.Name)]
public sealed class TokenizerAndHealthTests(ChatSystemFixture fixture)
{
    private ChatSystem System => fixture.System;

    private Tokenizer.TokenizerClient TokenizerClient => new(System.DialogueChannel);

    [Fact]
    public async Task Text_round_trips_through_Encode_and_Decode_and_CountTokens_agrees()
    {
        const string text = "Hello, world! Grüße, 你好 🙂";
        var encoded = await TokenizerClient.EncodeAsync(new EncodeRequest { Text = text });
        var decoded = await TokenizerClient.DecodeAsync(new DecodeRequest { TokenIds = { encoded.TokenIds } });
        var counted = await TokenizerClient.CountTokensAsync(new CountTokensRequest { Text = text });

        Assert.Equal(text, decoded.Text);
        Assert.Equal(encoded.TokenIds.Count, counted.TokenCount);
        var withBos = await TokenizerClient.EncodeAsync(new EncodeRequest { Text = text, AddSpecialTokens = true });
        Assert.Equal(1, withBos.TokenIds[0]); // Llama 2's <s>
    }

    [Fact]
    public async Task Special_token_strings_in_text_are_parsed_only_when_asked()
    {
        var plain = await TokenizerClient.EncodeAsync(new EncodeRequest { Text = "</s>" });
        var parsed = await TokenizerClient.EncodeAsync(new EncodeRequest { Text = "</s>", ParseSpecialTokens = true });
        Assert.DoesNotContain(2, plain.TokenIds);
        Assert.Equal([2], parsed.TokenIds);
    }

    [Fact]
    public async Task The_chat_template_renders_and_a_template_error_is_invalid_argument()
    {
        var rendered = await TokenizerClient.ApplyChatTemplateAsync(new ApplyChatTemplateRequest
        {
            Messages = { new ChatMessage { Role = "system", Content = "Be kind." }, new ChatMessage { Role = "user", Content = "Hi" } },
            AddGenerationPrompt = true,
            Tokenize = true,
        });
        Assert.Equal("<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST]", rendered.Prompt);
        Assert.Equal(1, rendered.TokenIds[0]);

        // Llama 2's template refuses two user turns in a row (raise_exception).
        var error = await Assert.ThrowsAsync<RpcException>(() => TokenizerClient.ApplyChatTemplateAsync(new ApplyChatTemplateRequest
        {
            Messages = { new ChatMessage { Role = "user", Content = "a" }, new ChatMessage { Role = "user", Content = "b" } },
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("alternate", error.Status.Detail);
    }

    [Fact]
    public async Task Token_ids_outside_the_vocabulary_are_refused_naming_the_field()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            TokenizerClient.DecodeAsync(new DecodeRequest { TokenIds = { 5, 999_999 } }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("token_ids[1]", error.Status.Detail);
    }

    [Fact]
    public async Task Both_grpc_services_report_serving_and_list_their_services_by_reflection()
    {
        foreach (var (service, expected) in new[] { (System.Dialogue, "chat.v1.Dialogue"), (System.Inference, "chat.v1.Inference") })
        {
            using var channel = GrpcChannel.ForAddress(service.Address);
            var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

            using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
            await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
            await call.RequestStream.CompleteAsync();
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Contains(expected, call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
        }
    }
}
