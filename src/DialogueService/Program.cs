using ChatServices.DialogueService;
using ChatServices.DialogueService.Api;
using ChatServices.Grpc.Server;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServer();
builder.AddDialogueServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcHealthAndReflection();
app.MapGrpcService<TokenizerApi>();
app.MapGrpcService<DialogueApi>();
app.Run();
