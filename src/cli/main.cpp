#include <cstdio>
int main() { std::puts("reel"); return 0; }
