using ChatServices.Grpc.Server;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGrpcServer();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcHealthAndReflection();
app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<Readiness>().MarkReady());
app.Run();
