// capi-relay: wires the components together; all logic lives in the component libraries.
#include "capi_relay/app/commands.hpp"

int main(int argc, char** argv) { return capi_relay::run_command_line(argc, argv); }
