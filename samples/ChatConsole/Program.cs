// A console chat with ChatServices: dotnet run --project samples/ChatConsole [DialogueService address]
// (an API key, where the service needs one, from CHATSERVICES_API_KEY). Ctrl+C stops a reply; an empty line quits.
using ChatServices.Client;
using Microsoft.Extensions.AI;

var address = args.Length > 0 ? args[0] : "http://127.0.0.1:50051";
using IChatClient chat = new ChatServicesChatClient(address, Environment.GetEnvironmentVariable("CHATSERVICES_API_KEY") is { Length: > 0 } key ? key : null);
List<ChatMessage> history = [new(ChatRole.System, "You are a helpful assistant.")];
CancellationTokenSource? reply = null;
Console.CancelKeyPress += (_, e) => { e.Cancel = reply is not null; reply?.Cancel(); };

Console.Write($"Chatting with {address}. An empty line quits.\n> ");
while (Console.ReadLine() is { Length: > 0 } line)
{
    history.Add(new(ChatRole.User, line));
    List<ChatResponseUpdate> updates = [];
    using (reply = new CancellationTokenSource())
    {
        try
        {
            await foreach (var update in chat.GetStreamingResponseAsync(history, new ChatOptions { MaxOutputTokens = 256 }, reply.Token))
            {
                Console.Write(update.Text);
                updates.Add(update);
            }
        }
        catch (OperationCanceledException) { Console.Write(" [stopped]"); }
    }
    reply = null;
    history.AddMessages(updates);
    Console.Write("\n> ");
}
