using ChatServices.Gateway;
using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGateway();

var app = builder.Build();
app.MapGateway();
app.Run();
