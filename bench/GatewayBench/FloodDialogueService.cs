using System.Net;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Gateway.Bench;

/// <summary>
/// A chat.v1.Dialogue that answers every chat with <c>max_tokens</c> four-character deltas as fast as it can: an
/// upstream with no model behind it, so that what is measured is the path from DialogueService to the client.
/// </summary>
public sealed class FloodDialogueService : Dialogue.DialogueBase
{
    private static readonly ChatEvent Delta = new() { Delta = new ChatDelta { Index = 0, Text = "tok " } };

    public override Task<ModelCard> GetModel(GetModelRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelCard { Id = "flood", ContextLength = 1 << 20, Created = 1_700_000_000, OwnedBy = "bench" });

    public override async Task Chat(ChatRequest request, IServerStreamWriter<ChatEvent> responseStream, ServerCallContext context)
    {
        var tokens = request.Settings.MaxTokens;
        await responseStream.WriteAsync(new ChatEvent { Started = new ChatStarted { PromptTokens = 8, Model = "flood" } });
        for (var i = 0; i < tokens; i++) await responseStream.WriteAsync(Delta);
        await responseStream.WriteAsync(new ChatEvent { Finished = new ChatFinished { Index = 0, FinishReason = "length" } });
        await responseStream.WriteAsync(new ChatEvent { Usage = new ChatUsage { PromptTokens = 8, CompletionTokens = tokens } });
    }

    public static async Task<(WebApplication App, Uri Address)> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        // Nothing from files: the Gateway's appsettings.json (copied beside this program) names its production port.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<FloodDialogueService>();
        var app = builder.Build();
        app.MapGrpcService<FloodDialogueService>();
        await app.StartAsync();
        return (app, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()));
    }
}
