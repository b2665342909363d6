using System.Text;
using System.Text.Json;

namespace ChatServices.Gateway.Tests.Infrastructure;

/// <summary>One Server-Sent Event as it came off the wire: its name (or null) and its data lines joined.</summary>
public sealed record ServerSentEvent(string? Name, string Data)
{
    public JsonElement Json => JsonDocument.Parse(Data).RootElement;
}

/// <summary>
/// A raw SSE client: reads a text/event-stream byte by byte as a browser's EventSource parser would, and checks
/// the framing strictly (each event a block of "field: value" lines ended by a blank line, nothing else).
/// </summary>
public static class ServerSentEventReader
{
    public static async Task<List<ServerSentEvent>> ReadAllAsync(HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        var events = new List<ServerSentEvent>();
        await foreach (var e in ReadAsync(response, cancellationToken)) events.Add(e);
        return events;
    }

    public static async IAsyncEnumerable<ServerSentEvent> ReadAsync(HttpResponseMessage response, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string? name = null;
        var data = new List<string>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                Assert.True(data.Count > 0, "an event with no data line");
                yield return new ServerSentEvent(name, string.Join('\n', data));
                name = null;
                data.Clear();
                continue;
            }
            if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Add(line[6..]);
            else if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else Assert.Fail($"unexpected SSE line: '{line}'");
        }
        Assert.True(data.Count == 0 && name is null, "the stream ended inside an event");
    }
}
