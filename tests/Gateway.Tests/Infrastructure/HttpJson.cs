using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ChatServices.Gateway.Tests.Infrastructure;

public static class HttpJson
{
    public static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string path, string json, CancellationToken cancellationToken = default) =>
        client.PostAsync(path, Body(json), cancellationToken);

    /// <summary>Posts and returns the response as soon as its headers arrive (for streams).</summary>
    public static Task<HttpResponseMessage> PostStreamingAsync(this HttpClient client, string path, string json, CancellationToken cancellationToken = default) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = Body(json) }, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement;
    }

    /// <summary>Asserts an OpenAI-shaped error with this status, and returns its "error" object.</summary>
    public static async Task<JsonElement> AssertErrorAsync(this HttpResponseMessage response, HttpStatusCode status, string? param = null)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("code", out _));
        if (param is not null) Assert.Equal(param, error.GetProperty("param").GetString());
        else Assert.True(error.TryGetProperty("param", out _));
        return error;
    }

    public static MediaTypeHeaderValue? ContentType(this HttpResponseMessage response) => response.Content.Headers.ContentType;
}
