using ChatServices.InferenceService.Api;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServiceDefaults();
builder.AddInferenceEngine();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<InferenceApi>();
app.MapGrpcServiceDefaults();
app.Run();
