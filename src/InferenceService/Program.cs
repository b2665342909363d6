using ChatServices.Grpc.Server;
using ChatServices.ServiceDefaults;
using Microsoft.ML.OnnxRuntime;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServer();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcHealthAndReflection();
app.Lifetime.ApplicationStarted.Register(() =>
{
    app.Logger.LogInformation("ONNX Runtime {Version}", OrtEnv.Instance().GetVersionString());
    app.Services.GetRequiredService<Readiness>().MarkReady();
});
app.Run();
