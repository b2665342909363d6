using ChatServices.DialogueService;
using ChatServices.DialogueService.Api;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServiceDefaults();
builder.AddDialogueServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<TokenizerApi>();
app.MapGrpcService<DialogueApi>();
app.MapGrpcService<AdminApi>();
app.MapGrpcServiceDefaults();
app.Run();
