using ChatServices.Grpc.Server;
using ChatServices.InferenceService.Api;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServer();
builder.AddInferenceEngine();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<InferenceApi>();
app.MapGrpcHealthAndReflection();
app.Run();
