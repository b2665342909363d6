using System.Net;
using ChatServices.Gateway.Tests.Infrastructure;

namespace ChatServices.Gateway.Tests.OpenAi;

/// <summary>Bad requests are refused with 400 (or 404, 413) in OpenAI's error shape, naming the field.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ValidationTests(GatewayFixture fixture)
{
    private const string Messages = """[{"role":"user","content":"hi"}]""";

    [Theory]
    [InlineData("\"temperature\":\"hot\"", "temperature")]
    [InlineData("\"temperature\":2.5", "temperature")]
    [InlineData("\"temperature\":-0.1", "temperature")]
    [InlineData("\"top_p\":1.5", "top_p")]
    [InlineData("\"top_p\":[1]", "top_p")]
    [InlineData("\"max_tokens\":0", "max_tokens")]
    [InlineData("\"max_tokens\":1.5", "max_tokens")]
    [InlineData("\"max_completion_tokens\":-3", "max_completion_tokens")]
    [InlineData("\"n\":0", "n")]
    [InlineData("\"n\":9", "n")]
    [InlineData("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop")]
    [InlineData("\"stop\":[1]", "stop")]
    [InlineData("\"stop\":{}", "stop")]
    [InlineData("\"seed\":\"x\"", "seed")]
    [InlineData("\"presence_penalty\":3", "presence_penalty")]
    [InlineData("\"frequency_penalty\":-2.5", "frequency_penalty")]
    [InlineData("\"logprobs\":\"yes\"", "logprobs")]
    [InlineData("\"top_logprobs\":3", "top_logprobs")]
    [InlineData("\"logprobs\":true,\"top_logprobs\":21", "top_logprobs")]
    [InlineData("\"stream\":\"yes\"", "stream")]
    [InlineData("\"stream_options\":{\"include_usage\":true}", "stream_options")]
    [InlineData("\"model\":7", "model")]
    public async Task A_bad_parameter_is_a_400_naming_it(string field, string param)
    {
        var json = field.StartsWith("\"model\"", StringComparison.Ordinal)
            ? $$"""{"messages":{{Messages}},{{field}}}"""
            : $$"""{"model":"{{ScriptedDialogueService.ModelId}}","messages":{{Messages}},{{field}}}""";
        using var client = fixture.CreateClient();
        var error = await (await client.PostJsonAsync("/v1/chat/completions", json)).AssertErrorAsync(HttpStatusCode.BadRequest, param);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(param, error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("temperature", "\"hot\"", "a number")]
    [InlineData("n", "1.5", "an integer")]
    [InlineData("stream", "\"yes\"", "a boolean")]
    [InlineData("user", "{}", "a string")]
    [InlineData("messages", "\"hi\"", "an array")]
    [InlineData("stream_options", "true", "an object")]
    public async Task A_wrong_type_says_what_was_expected(string param, string value, string expected)
    {
        using var client = fixture.CreateClient();
        var error = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model":"test-model","{{param}}":{{value}}}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, param);
        Assert.Equal($"Invalid type or value for '{param}'. Expected {expected}.", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("""{"model":"test-model"}""", "messages")]
    [InlineData("""{"model":"test-model","messages":[]}""", "messages")]
    [InlineData("""{"model":"test-model","messages":"hi"}""", "messages")]
    [InlineData("""{"model":"test-model","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"model":"test-model","messages":[{"role":"user"}]}""", "messages[0].content")]
    [InlineData("""{"model":"test-model","messages":[{"role":"user","content":42}]}""", "messages[0].content")]
    [InlineData("""{"model":"test-model","messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[1].content")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model")]
    public async Task A_bad_message_list_or_missing_model_is_a_400_naming_the_field(string json, string param)
    {
        using var client = fixture.CreateClient();
        await (await client.PostJsonAsync("/v1/chat/completions", json)).AssertErrorAsync(HttpStatusCode.BadRequest, param);
    }

    [Theory]
    [InlineData("max_tokens", 4096)]
    [InlineData("max_tokens", 100000)]
    [InlineData("max_completion_tokens", 100000)]
    public async Task A_reply_limit_the_context_cannot_hold_is_a_400_naming_that_limit(string param, int value)
    {
        using var client = fixture.CreateClient();
        var json = $$"""{"model":"{{ScriptedDialogueService.ModelId}}","messages":{{Messages}},"{{param}}":{{value}}}""";
        var error = await (await client.PostJsonAsync("/v1/chat/completions", json)).AssertErrorAsync(HttpStatusCode.BadRequest, param);
        Assert.Contains("context length is 4096 tokens", error.GetProperty("message").GetString());
        await (await client.PostJsonAsync("/v1/completions", $$"""{"model":"{{ScriptedDialogueService.ModelId}}","prompt":"hi","max_tokens":{{value}}}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "max_tokens");
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"u\xff\":1}", 68)]
    [InlineData("/v1/chat/completions", "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"h\xc3\"}]}", 61)]
    [InlineData("/v1/completions", "{\"\xed\xa0\x80\":\"x\",\"model\":\"test-model\",\"prompt\":\"hi\"}", 2)]
    [InlineData("/api/conversations", "{\"title\":\"t\",\"\xc0\xaf\":1}", 14)]
    public async Task Invalid_UTF8_anywhere_in_a_body_is_a_400(string path, string latin1Body, int offset)
    {
        // Each char of latin1Body is one byte: the bodies hold bytes that are not UTF-8 (in a key, in a value).
        var bytes = System.Text.Encoding.Latin1.GetBytes(latin1Body);
        using var client = fixture.CreateClient();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        var error = await (await client.PostAsync(path, content)).AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.Equal("invalid_encoding", error.GetProperty("code").GetString());
        Assert.Contains($"at byte {offset}", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task More_messages_than_the_limit_is_a_400()
    {
        var messages = string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", GatewayFixture.MaxMessages + 1));
        using var client = fixture.CreateClient();
        var error = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model":"test-model","messages":[{{messages}}]}"""))
            .AssertErrorAsync(HttpStatusCode.BadRequest, "messages");
        Assert.Equal("too_many_messages", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_that_is_not_JSON_is_a_400()
    {
        using var client = fixture.CreateClient();
        await (await client.PostJsonAsync("/v1/chat/completions", "{not json")).AssertErrorAsync(HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    public async Task A_body_that_is_not_sent_as_JSON_is_a_415(string? contentType)
    {
        using var client = fixture.CreateClient();
        var content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes($$"""{"model":"test-model","messages":{{Messages}}}"""));
        if (contentType is not null) content.Headers.ContentType = new(contentType);
        await (await client.PostAsync("/v1/chat/completions", content)).AssertErrorAsync(HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404_model_not_found()
    {
        using var client = fixture.CreateClient();
        var error = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model":"gpt-9","messages":{{Messages}}}"""))
            .AssertErrorAsync(HttpStatusCode.NotFound, "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_over_the_size_limit_is_a_413()
    {
        var big = new string('a', GatewayFixture.MaxBodyBytes + 10);
        using var client = fixture.CreateClient();
        var error = await (await client.PostJsonAsync("/v1/chat/completions", $$"""{"model":"test-model","messages":[{"role":"user","content":"{{big}}"}]}"""))
            .AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_chunked_body_over_the_size_limit_is_a_413_too()
    {
        var big = new string('a', GatewayFixture.MaxBodyBytes + 10);
        using var client = fixture.CreateClient();
        var content = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes($$"""{"model":"test-model","messages":[{"role":"user","content":"{{big}}"}]}""")));
        content.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        await (await client.SendAsync(request)).AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge);
    }

    [Theory]
    [InlineData("""{"model":"test-model","prompt":[1,2,3]}""", "prompt")]
    [InlineData("""{"model":"test-model"}""", "prompt")]
    [InlineData("""{"model":"test-model","prompt":"x","echo":true}""", "echo")]
    [InlineData("""{"model":"test-model","prompt":"x","max_tokens":0}""", "max_tokens")]
    public async Task The_legacy_completions_endpoint_validates_too(string json, string param)
    {
        using var client = fixture.CreateClient();
        await (await client.PostJsonAsync("/v1/completions", json)).AssertErrorAsync(HttpStatusCode.BadRequest, param);
    }

    [Fact]
    public async Task An_unknown_v1_url_is_a_404_in_OpenAIs_shape()
    {
        using var client = fixture.CreateClient();
        await (await client.GetAsync("/v1/engines")).AssertErrorAsync(HttpStatusCode.NotFound);
    }
}
