using System.Collections.Concurrent;
using System.Net;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Client.Tests.Infrastructure;

/// <summary>One call as it arrived: the method, its <c>authorization</c> metadata (null if none) and its request.</summary>
public sealed record RecordedCall(string Method, string? Authorization, IMessage Request);

/// <summary>
/// A real grpc-dotnet server (Kestrel, HTTP/2 cleartext on 127.0.0.1, a port the OS picks) serving chat.v1.Dialogue
/// and chat.v1.Tokenizer as scripted by the test, recording every call that reaches it. It stands in for
/// DialogueService only where a test proves what the client puts on the wire or how it treats an answer.
/// </summary>
public sealed class RecordingDialogueServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RecordingDialogueServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public ConcurrentQueue<RecordedCall> Calls { get; } = new();

    /// <summary>Statuses to answer, one per call, before anything else (for retries and error mapping).</summary>
    public ConcurrentQueue<Status> Failures { get; } = new();

    /// <summary>How Chat answers once no failure is queued. Default: <see cref="ReplyAsync"/>.</summary>
    public Func<ChatRequest, IServerStreamWriter<ChatEvent>, ServerCallContext, Task> Chat { get; set; } = ReplyAsync;

    /// <summary>Completed when a Chat call's cancellation reaches the server (the client cancelled on the wire).</summary>
    public TaskCompletionSource ChatCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<RecordedCall> CallsTo(string method) => [.. Calls.Where(c => c.Method == method)];

    public static async Task<RecordingDialogueServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        var holder = new ServerHolder();
        builder.Services.AddSingleton(holder);
        var app = builder.Build();
        app.MapGrpcService<ScriptedDialogue>();
        app.MapGrpcService<ScriptedTokenizer>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return holder.Server = new RecordingDialogueServer(app, new Uri(address));
    }

    /// <summary>The default reply: started, "Hello", " world", finished (stop), usage 5 + 2 tokens with 3 cached.</summary>
    public static async Task ReplyAsync(ChatRequest request, IServerStreamWriter<ChatEvent> output, ServerCallContext context)
    {
        await output.WriteAsync(new ChatEvent { Started = new ChatStarted { ConversationId = request.ConversationId, PromptTokens = 5, Model = "test-model" } });
        await output.WriteAsync(new ChatEvent { Delta = new ChatDelta { Text = "Hello" } });
        await output.WriteAsync(new ChatEvent { Delta = new ChatDelta { Text = " world" } });
        await output.WriteAsync(new ChatEvent { Finished = new ChatFinished { FinishReason = "stop" } });
        await output.WriteAsync(new ChatEvent { Usage = new ChatUsage { PromptTokens = 5, CompletionTokens = 2, CachedPromptTokens = 3 } });
    }

    internal void Record(IMessage request, ServerCallContext context)
    {
        Calls.Enqueue(new RecordedCall(context.Method, context.RequestHeaders.GetValue("authorization"), request));
        if (Failures.TryDequeue(out var failure)) throw new RpcException(failure);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class ServerHolder
    {
        public RecordingDialogueServer Server = null!;
    }

    private sealed class ScriptedDialogue(ServerHolder holder) : Dialogue.DialogueBase
    {
        public override async Task Chat(ChatRequest request, IServerStreamWriter<ChatEvent> responseStream, ServerCallContext context)
        {
            var server = holder.Server;
            server.Record(request, context);
            using var _ = context.CancellationToken.Register(() => server.ChatCancelled.TrySetResult());
            await server.Chat(request, responseStream, context);
        }

        public override Task<ModelCard> GetModel(GetModelRequest request, ServerCallContext context)
        {
            holder.Server.Record(request, context);
            return Task.FromResult(new ModelCard { Id = "test-model", ContextLength = 1024 });
        }

        public override Task<Conversation> CreateConversation(CreateConversationRequest request, ServerCallContext context)
        {
            holder.Server.Record(request, context);
            return Task.FromResult(new Conversation { Id = Guid.NewGuid().ToString(), Title = request.Title });
        }
    }

    /// <summary>Token ids are the characters' code points: enough to see what the client sent and read back.</summary>
    private sealed class ScriptedTokenizer(ServerHolder holder) : Tokenizer.TokenizerBase
    {
        public override Task<EncodeResponse> Encode(EncodeRequest request, ServerCallContext context)
        {
            holder.Server.Record(request, context);
            return Task.FromResult(new EncodeResponse { TokenIds = { request.Text.Select(c => (int)c) } });
        }

        public override Task<CountTokensResponse> CountTokens(CountTokensRequest request, ServerCallContext context)
        {
            holder.Server.Record(request, context);
            return Task.FromResult(new CountTokensResponse { TokenCount = request.Text.Length });
        }

        public override Task<DecodeResponse> Decode(DecodeRequest request, ServerCallContext context)
        {
            holder.Server.Record(request, context);
            return Task.FromResult(new DecodeResponse { Text = new string([.. request.TokenIds.Select(i => (char)i)]) });
        }
    }
}
