using ChatServices.Client.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Client.Tests;

/// <summary>What <see cref="ChatServicesTokenizer"/> sends and returns. (Against the real tokenizer: EndToEnd.Tests.)</summary>
public sealed class TokenizerTests : RecordingServerTests
{
    [Fact]
    public async Task Encode_count_and_decode_send_their_arguments_and_return_the_answers()
    {
        using var tokenizer = new ChatServicesTokenizer(Server.Address.ToString());

        var ids = await tokenizer.EncodeAsync("abc", addSpecialTokens: true);
        var count = await tokenizer.CountTokensAsync("abcd");
        var text = await tokenizer.DecodeAsync([104, 105], skipSpecialTokens: true);

        Assert.Equal([97, 98, 99], ids);
        Assert.Equal(4, count);
        Assert.Equal("hi", text);
        var calls = Server.Calls.ToArray();
        Assert.True(Assert.IsType<EncodeRequest>(calls[0].Request).AddSpecialTokens);
        Assert.False(Assert.IsType<CountTokensRequest>(calls[1].Request).AddSpecialTokens);
        Assert.True(Assert.IsType<DecodeRequest>(calls[2].Request).SkipSpecialTokens);
    }
}
