// The Store protocol and its backends land with issue 3.
