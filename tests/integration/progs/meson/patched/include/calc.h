long compute(long x);
long checked(long x);
